// A free TCP port on 127.0.0.1 for tests that start several processes (the c10d store listens there).
#pragma once
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace pidistill::test {

// The kernel picks an unused port; it is released at once, so a clash is possible but very unlikely.
inline int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

}  // namespace pidistill::test
