/*
 * doctor_dns.c - the doctor's DNS sections (placeholder, being written).
 */
#include "policyd/doctor.h"

void doctor_addresses(struct doctor *d)
{
    (void)d;
}
void doctor_spf(struct doctor *d)
{
    (void)d;
}
void doctor_dmarc(struct doctor *d)
{
    (void)d;
}
void doctor_mx(struct doctor *d)
{
    (void)d;
}
void doctor_dnsbl(struct doctor *d)
{
    (void)d;
}
