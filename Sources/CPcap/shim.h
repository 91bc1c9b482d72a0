#ifndef HOPTRACE_CPCAP_SHIM_H
#define HOPTRACE_CPCAP_SHIM_H
#include <pcap/pcap.h>
#include <net/if.h>

/* setns(2) is declared by glibc only under _GNU_SOURCE; declare it for Swift. */
extern int setns(int fd, int nstype);

/* Enters the network namespace open at fd (CLONE_NEWNET). */
static inline int hoptrace_enter_netns(int fd) { return setns(fd, 0x40000000); }
#endif
