// The README's quick-start code is the examples/ programs, verbatim; the test suite builds and
// runs those programs. These tests fail when the two drift apart, when the two commands the
// README gives stop existing, or when a link in the README or docs/ points at no file.
#include <gtest/gtest.h>

#include <filesystem>
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

TEST(Readme, TheTwoCommandsExistAndAreExecutable) {
  const std::string readme = slurp(std::string(PICORING_SOURCE_DIR) + "/README.md");
  for (const char* command : {"scripts/main-job.sh", "scripts/test-all.sh"}) {
    EXPECT_NE(readme.find(std::string("`") + command + "`"), std::string::npos) << "README.md must give " << command;
    const auto path = std::filesystem::path(PICORING_SOURCE_DIR) / command;
    ASSERT_TRUE(std::filesystem::exists(path)) << command;
#if !defined(_WIN32)  // Windows (the test's wine run included) has no execute bit to check
    EXPECT_NE(std::filesystem::status(path).permissions() & std::filesystem::perms::owner_exec,
              std::filesystem::perms::none)
        << command << " is not executable";
#endif
  }
}

// Every relative link, [text](path) or [text](path#anchor), names a file of the repository.
TEST(Readme, RelativeLinksNameFilesThatExist) {
  const std::filesystem::path root(PICORING_SOURCE_DIR);
  int links = 0;
  for (const char* doc : {"README.md", "docs/benchmarks.md", "docs/design.md", "scenarios/README.md"}) {
    const std::string text = slurp((root / doc).string());
    // Markdown links "](target)" or "](target#anchor)"; a target with ':' (a URL) or a space is
    // not a file. (No std::regex: GCC 12 warns inside <regex> at -O2 with sanitizers.)
    for (std::size_t at = text.find("]("); at != std::string::npos; at = text.find("](", at + 2)) {
      const std::size_t close = text.find(')', at + 2);
      if (close == std::string::npos) break;
      const std::string target = text.substr(at + 2, close - at - 2);
      const std::string file = target.substr(0, target.find('#'));
      if (file.empty() || file.find_first_of(": \t\n") != std::string::npos) continue;
      EXPECT_TRUE(std::filesystem::exists((root / doc).parent_path() / file))
          << doc << " links to " << file << ", which does not exist";
      ++links;
    }
  }
  EXPECT_GT(links, 10);  // the pattern finds the links at all
}

}  // namespace
