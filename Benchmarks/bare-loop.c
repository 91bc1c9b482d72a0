/*
 * bare-loop.c — the floor for hoptrace's decode benchmark.
 *
 * The least a libpcap reader can do: open the file with nanosecond
 * timestamps (as hoptrace does), read every packet with pcap_next_ex, and
 * touch each one just enough that the compiler cannot drop the loop (sum of
 * caplen and of the first byte of the data). Prints the packet count and the
 * sums. hoptrace's `packets -q` is compared against this.
 *
 * Build: cc -O2 -o bare-loop bare-loop.c -lpcap
 * Use:   bare-loop FILE
 * Exit:  0 ok, 2 usage or input error.
 */
#include <pcap/pcap.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s FILE.pcap\n", argv[0]);
        return 2;
    }

    char errbuf[PCAP_ERRBUF_SIZE];
    errbuf[0] = '\0';
    pcap_t *p = pcap_open_offline_with_tstamp_precision(
        argv[1], PCAP_TSTAMP_PRECISION_NANO, errbuf);
    if (p == NULL) {
        fprintf(stderr, "bare-loop: %s: %s\n", argv[1], errbuf);
        return 2;
    }

    struct pcap_pkthdr *hdr;
    const u_char *data;
    uint64_t packets = 0, caplen_sum = 0, byte_sum = 0, ts_sum = 0;
    int rc;
    while ((rc = pcap_next_ex(p, &hdr, &data)) == 1) {
        packets++;
        caplen_sum += hdr->caplen;
        ts_sum += (uint64_t)hdr->ts.tv_usec; /* nanoseconds with NANO precision */
        if (hdr->caplen > 0)
            byte_sum += data[0];
    }
    if (rc == PCAP_ERROR) {
        fprintf(stderr, "bare-loop: %s: after packet %" PRIu64 ": %s\n",
                argv[1], packets, pcap_geterr(p));
        pcap_close(p);
        return 2;
    }
    pcap_close(p);

    printf("packets %" PRIu64 " caplen_sum %" PRIu64 " byte_sum %" PRIu64
           " ts_sum %" PRIu64 "\n", packets, caplen_sum, byte_sum, ts_sum);
    return 0;
}
