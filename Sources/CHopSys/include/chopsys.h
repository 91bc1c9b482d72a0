// What Swift's Glibc module leaves out and the proxy's event loop needs: epoll, eventfd,
// accept4 and naming a thread.
#ifndef CHOPSYS_H
#define CHOPSYS_H
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

/// accept4 with SOCK_NONBLOCK | SOCK_CLOEXEC (address and length as accept's).
int chopsys_accept(int fd, void *address, unsigned int *length);

/// Enters the network namespace open at fd (setns with CLONE_NEWNET), for this thread.
int chopsys_enter_netns(int fd);

/// Names the calling thread (up to 15 bytes; PR_SET_NAME).
void chopsys_name_thread(const char *name);

static const uint32_t CHOPSYS_EPOLLIN = EPOLLIN;
static const uint32_t CHOPSYS_EPOLLOUT = EPOLLOUT;
static const uint32_t CHOPSYS_EPOLLERR = EPOLLERR;
static const uint32_t CHOPSYS_EPOLLHUP = EPOLLHUP;
static const uint32_t CHOPSYS_EPOLLRDHUP = EPOLLRDHUP;
#endif
