// The README's quick-start code is the examples/ programs, verbatim; the test suite builds and
// runs those programs. These tests fail when the two drift apart, when the two commands the
// README gives stop existing, or when a link in the README or docs/ points at no file.
#include <gtest/gtest.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
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

// The anchors GitHub gives a Markdown file's headings: lower case, spaces to '-', every other
// character but letters, digits, '-' and '_' dropped (bytes of UTF-8 sequences kept); a repeated
// heading gets -1, -2, ... Headings inside ``` blocks are code, not headings.
std::set<std::string> heading_anchors(const std::string& markdown) {
  std::set<std::string> anchors;
  std::map<std::string, int> seen;
  std::istringstream in(markdown);
  bool in_code = false;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("```", 0) == 0) in_code = !in_code;
    if (in_code || line.empty() || line[0] != '#') continue;
    const std::size_t text = line.find_first_not_of('#');
    if (text == std::string::npos || line[text] != ' ') continue;
    std::string slug;
    for (std::size_t i = text + 1; i < line.size(); ++i) {
      const auto c = static_cast<unsigned char>(line[i]);
      if (c == ' ') {
        slug += '-';
      } else if (std::isalnum(c) != 0 || c == '-' || c == '_' || c >= 0x80) {
        slug += static_cast<char>(std::tolower(c));
      }
    }
    const int n = seen[slug]++;
    anchors.insert(n == 0 ? slug : slug + "-" + std::to_string(n));
  }
  return anchors;
}

// Every relative link, [text](path) or [text](path#anchor), names a file of the repository, and
// an anchor into a Markdown file names one of its headings.
TEST(Readme, RelativeLinksNameFilesAndHeadingsThatExist) {
  const std::filesystem::path root(PICORING_SOURCE_DIR);
  int links = 0;
  int anchors = 0;
  for (const char* doc : {"README.md", "docs/benchmarks.md", "docs/design.md", "docs/migration.md",
                          "scenarios/README.md", "python/README.md"}) {
    const std::string text = slurp((root / doc).string());
    // Markdown links "](target)" or "](target#anchor)"; a target with ':' (a URL) or a space is
    // not a file. (No std::regex: GCC 12 warns inside <regex> at -O2 with sanitizers.)
    for (std::size_t at = text.find("]("); at != std::string::npos; at = text.find("](", at + 2)) {
      const std::size_t close = text.find(')', at + 2);
      if (close == std::string::npos) break;
      const std::string target = text.substr(at + 2, close - at - 2);
      const std::size_t hash = target.find('#');
      const std::string file = target.substr(0, hash);
      if (target.empty() || target.find_first_of(": \t\n") != std::string::npos) continue;
      const std::filesystem::path path = file.empty() ? root / doc : (root / doc).parent_path() / file;
      EXPECT_TRUE(std::filesystem::exists(path)) << doc << " links to " << file << ", which does not exist";
      ++links;
      if (hash == std::string::npos || path.extension() != ".md" || !std::filesystem::exists(path)) continue;
      const std::string anchor = target.substr(hash + 1);
      EXPECT_EQ(heading_anchors(slurp(path.string())).count(anchor), 1U)
          << doc << " links to " << target << ": no heading of " << path.filename().string() << " has that anchor";
      ++anchors;
    }
  }
  EXPECT_GT(links, 10);   // the pattern finds the links at all
  EXPECT_GT(anchors, 5);  // and the anchors
}

// The anchor rules above, on headings whose anchors GitHub is known to give.
TEST(Readme, HeadingAnchorsFollowGitHubsRules) {
  const auto a = heading_anchors(
      "# picoring\n## The SPSC queue\n### By regime (2026-12-02)\n```\n# not a heading\n```\n"
      "### Pages populated by the kernel (2026-12-02, third session)\n## Usage\n## Usage\n#nospace\n");
  const std::set<std::string> want{
      "picoring", "the-spsc-queue", "by-regime-2026-12-02", "pages-populated-by-the-kernel-2026-12-02-third-session",
      "usage",    "usage-1"};
  EXPECT_EQ(a, want);
}

}  // namespace
