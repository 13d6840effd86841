/*
 * doctor_tls.c - the doctor's TLS section (placeholder until the OpenSSL check lands).
 */
#include "policyd/doctor.h"

void doctor_tls(struct doctor *d)
{
    (void)d;
}
