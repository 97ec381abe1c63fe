// Slurm hostlist expansion against what `scontrol show hostnames` prints.
#include "launcher/cli/hostlist.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace anvil::launcher {
namespace {

using Hosts = std::vector<std::string>;

Hosts Expand(const std::string& s) {
  absl::StatusOr<Hosts> h = ExpandHostlist(s);
  EXPECT_TRUE(h.ok()) << s << ": " << h.status();
  return h.ok() ? *h : Hosts{};
}

TEST(Hostlist, Plain) {
  EXPECT_EQ(Expand("gpu-a"), Hosts({"gpu-a"}));
  EXPECT_EQ(Expand("a,b,c"), Hosts({"a", "b", "c"}));
}

TEST(Hostlist, RangesKeepPaddingAndOrder) {
  EXPECT_EQ(Expand("node[01-04,07],gpu-a"),
            Hosts({"node01", "node02", "node03", "node04", "node07", "gpu-a"}));
  EXPECT_EQ(Expand("n[8-11]"), Hosts({"n8", "n9", "n10", "n11"}));
  EXPECT_EQ(Expand("n[098-101]"), Hosts({"n098", "n099", "n100", "n101"}));
  EXPECT_EQ(Expand("n[5,1-2]"), Hosts({"n5", "n1", "n2"}));
}

TEST(Hostlist, SuffixAndCartesianProduct) {
  EXPECT_EQ(Expand("n[1-2]-ib"), Hosts({"n1-ib", "n2-ib"}));
  EXPECT_EQ(Expand("r[1-2]n[1-2]"), Hosts({"r1n1", "r1n2", "r2n1", "r2n2"}));
  EXPECT_EQ(Expand("a[1],b[2-3],c"), Hosts({"a1", "b2", "b3", "c"}));
}

TEST(Hostlist, SizeOfBigRange) {
  absl::StatusOr<Hosts> h = ExpandHostlist("gpu[0000-4095]");
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->size(), 4096u);
  EXPECT_EQ(h->back(), "gpu4095");
}

TEST(Hostlist, Malformed) {
  for (const char* bad : {"", "n[1-2", "n1-2]", "n[]", "n[a-b]", "n[3-1]", "n[1-2-3]", "a,,b",
                          "n[[1]]", "n[0-99999999]", "n[1,]"}) {
    absl::StatusOr<Hosts> h = ExpandHostlist(bad);
    EXPECT_FALSE(h.ok()) << "accepted \"" << bad << "\"";
    if (!h.ok()) {
      EXPECT_EQ(h.status().code(), absl::StatusCode::kInvalidArgument);
      EXPECT_NE(h.status().message().find("bad hostlist"), std::string::npos);
    }
  }
}

}  // namespace
}  // namespace anvil::launcher
