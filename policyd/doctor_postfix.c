/*
 * doctor_postfix.c - the doctor's Postfix wiring and queue sections (placeholders).
 */
#include "policyd/doctor.h"

void doctor_postfix(struct doctor *d)
{
    (void)d;
}

void doctor_queue(struct doctor *d)
{
    (void)d;
}
