#include "common/address.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cctype>
#include <string>

namespace sweep {
namespace {

bool IsV4Loopback(const in_addr& a) { return (ntohl(a.s_addr) >> 24) == 127; }

// The host part of `address` (see IsLoopbackAddress), brackets removed.
std::string_view HostOf(std::string_view address) {
  for (std::string_view scheme : {"ipv4:", "ipv6:", "dns:"}) {
    if (address.starts_with(scheme)) {
      address.remove_prefix(scheme.size());
      break;
    }
  }
  if (address.starts_with("//")) {  // dns://AUTHORITY/HOST:PORT
    size_t slash = address.find('/', 2);
    address = slash == std::string_view::npos ? std::string_view() : address.substr(slash + 1);
  }
  if (address.starts_with("[")) {
    size_t close = address.find(']');
    if (close == std::string_view::npos) return {};  // malformed
    return address.substr(1, close - 1);
  }
  size_t colon = address.find(':');
  if (colon == std::string_view::npos) return address;
  // More than one colon and no brackets: a bare IPv6 address, without a port.
  if (address.find(':', colon + 1) != std::string_view::npos) return address;
  return address.substr(0, colon);
}

}  // namespace

bool IsLoopbackHost(std::string_view host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.find('\0') != std::string_view::npos) return false;
  std::string h(host);
  std::transform(h.begin(), h.end(), h.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (h == "localhost") return true;
  in_addr v4{};
  if (inet_pton(AF_INET, h.c_str(), &v4) == 1) return IsV4Loopback(v4);
  in6_addr v6{};
  if (inet_pton(AF_INET6, h.c_str(), &v6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
    if (IN6_IS_ADDR_V4MAPPED(&v6)) {
      in_addr mapped{};
      std::copy(v6.s6_addr + 12, v6.s6_addr + 16, reinterpret_cast<unsigned char*>(&mapped));
      return IsV4Loopback(mapped);
    }
  }
  return false;
}

bool IsLoopbackAddress(std::string_view address) { return IsLoopbackHost(HostOf(address)); }

}  // namespace sweep
