/*
 * doctor_dkim.c - the doctor's DKIM section (placeholder until the libopendkim check lands).
 */
#include "policyd/doctor.h"

void doctor_dkim(struct doctor *d)
{
    (void)d;
}
