// The README's quick-start code is the examples/ programs, verbatim; the test suite builds and
// runs those programs. This test fails when the two drift apart.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

class ReadmeExample : public ::testing::TestWithParam<const char*> {};

TEST_P(ReadmeExample, IsQuotedVerbatimInTheReadme) {
  const std::string readme = slurp(std::string(PICORING_SOURCE_DIR) + "/README.md");
  const std::string code = slurp(std::string(PICORING_SOURCE_DIR) + "/examples/" + GetParam() + ".cpp");
  ASSERT_FALSE(code.empty());
  EXPECT_NE(readme.find("```cpp\n" + code + "```"), std::string::npos)
      << "README.md must contain examples/" << GetParam() << ".cpp verbatim in a ```cpp block";
}

INSTANTIATE_TEST_SUITE_P(QuickStart, ReadmeExample,
                         ::testing::Values("quickstart_ring", "quickstart_queue", "quickstart_stream"));

}  // namespace
