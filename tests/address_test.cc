// Tests of common/address.h: the one loopback rule (the scheduler's token check,
// the dashboard's Host check and token, `sweep slurm workers`' warning).
#include "common/address.h"

#include <string>

#include "gtest/gtest.h"

namespace sweep {
namespace {

TEST(AddressTest, LoopbackAddressesAreRecognized) {
  EXPECT_TRUE(IsLoopbackAddress("127.0.0.1:50051"));
  EXPECT_TRUE(IsLoopbackAddress("127.3.2.1:1"));
  EXPECT_TRUE(IsLoopbackAddress("localhost:50051"));
  EXPECT_TRUE(IsLoopbackAddress("[::1]:50051"));
  EXPECT_FALSE(IsLoopbackAddress("0.0.0.0:50051"));
  EXPECT_FALSE(IsLoopbackAddress("[::]:50051"));
  EXPECT_FALSE(IsLoopbackAddress("10.1.2.3:50051"));
  EXPECT_FALSE(IsLoopbackAddress("head:50051"));
}

TEST(AddressTest, LoopbackIsLocalhost127SlashEightAndV6One) {
  EXPECT_TRUE(IsLoopbackHost("localhost"));
  EXPECT_TRUE(IsLoopbackHost("127.0.0.1"));
  EXPECT_TRUE(IsLoopbackHost("127.1.2.3"));
  EXPECT_TRUE(IsLoopbackHost("::1"));
  EXPECT_FALSE(IsLoopbackHost("0.0.0.0"));
  EXPECT_FALSE(IsLoopbackHost("::"));
  EXPECT_FALSE(IsLoopbackHost("10.0.0.5"));
  EXPECT_FALSE(IsLoopbackHost("example.com"));
}

TEST(AddressTest, EverySpellingOfTheLoopbackHostsCounts) {
  EXPECT_TRUE(IsLoopbackHost("LocalHost"));
  EXPECT_TRUE(IsLoopbackHost("127.255.255.254"));
  EXPECT_TRUE(IsLoopbackHost("[::1]"));
  EXPECT_TRUE(IsLoopbackHost("0:0:0:0:0:0:0:1"));
  EXPECT_TRUE(IsLoopbackHost("::ffff:127.0.0.1"));
  EXPECT_FALSE(IsLoopbackHost("::ffff:10.0.0.1"));
  EXPECT_FALSE(IsLoopbackHost("::2"));
  EXPECT_FALSE(IsLoopbackHost("128.0.0.1"));
}

TEST(AddressTest, NamesThatMerelyStartLikeLoopbackAreNot) {
  // The old copies took any host starting with "127." for loopback.
  EXPECT_FALSE(IsLoopbackHost("127.0.0.1.example.com"));
  EXPECT_FALSE(IsLoopbackHost("127.example"));
  EXPECT_FALSE(IsLoopbackAddress("127.0.0.1.example.com:50051"));
  EXPECT_FALSE(IsLoopbackHost("localhost.example.com"));
  EXPECT_FALSE(IsLoopbackHost("127.1"));  // shorthand: not taken for loopback
  EXPECT_FALSE(IsLoopbackHost(""));
  EXPECT_FALSE(IsLoopbackHost(std::string("127.0.0.1\0.evil", 15)));
}

TEST(AddressTest, AddressesAreReadInTheFormsGrpcAndHostHeadersUse) {
  EXPECT_TRUE(IsLoopbackAddress("localhost"));
  EXPECT_TRUE(IsLoopbackAddress("127.0.0.1"));
  EXPECT_TRUE(IsLoopbackAddress("[::1]"));
  EXPECT_TRUE(IsLoopbackAddress("::1"));  // bare IPv6, no port
  EXPECT_TRUE(IsLoopbackAddress("LOCALHOST:8080"));
  EXPECT_TRUE(IsLoopbackAddress("ipv4:127.0.0.1:50051"));
  EXPECT_TRUE(IsLoopbackAddress("ipv6:[::1]:50051"));
  EXPECT_TRUE(IsLoopbackAddress("dns:localhost:50051"));
  EXPECT_TRUE(IsLoopbackAddress("dns:///localhost:50051"));
  EXPECT_FALSE(IsLoopbackAddress("dns://127.0.0.1/head:50051"));  // the resolver is not the host
  EXPECT_FALSE(IsLoopbackAddress(":50051"));  // every interface
  EXPECT_FALSE(IsLoopbackAddress("[::]"));
  EXPECT_FALSE(IsLoopbackAddress("::"));
  EXPECT_FALSE(IsLoopbackAddress("[::1"));  // unclosed: "::1" would be a guess
}

TEST(AddressTest, TheDefaultAddressesAreLoopback) {
  EXPECT_TRUE(IsLoopbackAddress(kDefaultSchedulerAddress));
  EXPECT_TRUE(IsLoopbackAddress(kDefaultDashboardAddress));
}

}  // namespace
}  // namespace sweep
