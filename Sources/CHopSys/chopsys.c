#define _GNU_SOURCE
#include <sched.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include "chopsys.h"

int chopsys_accept(int fd, void *address, unsigned int *length) {
    return accept4(fd, (struct sockaddr *)address, (socklen_t *)length, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

void chopsys_name_thread(const char *name) {
    prctl(PR_SET_NAME, name, 0, 0, 0);
}

int chopsys_enter_netns(int fd) {
    return setns(fd, CLONE_NEWNET);
}
