// The Jinja interpreter and ChatTemplate against renderings of the npm package @huggingface/jinja
// (tests/server/chat_templates/expected.json, made by tests/server/chat_template_expected.mjs
// from the Llama-2/3/3.1, Mistral v0.1/v0.3, Qwen2/2.5 templates and feature snippets), plus
// Python-Jinja behaviour that package does not share (checked against hand-written expectations).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/test_paths.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/jinja/template.h"

namespace fdpp {
namespace {

using nlohmann::ordered_json;

std::filesystem::path fixture_dir() { return test::test_data_dir() / "server" / "chat_templates"; }

ordered_json read_json(const std::filesystem::path& p) { return ordered_json::parse(test::read_file(p)); }

std::string render_snippet(const std::string& source, const ordered_json& vars = ordered_json::object()) {
  jinja::Dict d;
  for (const auto& [k, v] : vars.items()) d.set(k, jinja::Value::from_json(v));
  return jinja::Template(source).render(d);
}

TEST(ChatTemplate, AgreesWithHuggingFaceJinjaOnModelTemplatesAndSnippets) {
  const ordered_json cases = read_json(fixture_dir() / "cases.json");
  const ordered_json expected = read_json(fixture_dir() / "expected.json")["results"];
  size_t i = 0, compared = 0;
  for (const auto& [name, t] : cases["templates"].items()) {
    const std::string source = test::read_file(fixture_dir() / "templates" / t["file"].get<std::string>());
    const ChatTemplate tmpl = ChatTemplate::from_source(source, t["bos_token"], t["eos_token"]);
    for (const auto& conv : cases["conversations"]) {
      const ordered_json& want = expected.at(i++);
      ASSERT_EQ(want["template"], name);
      ASSERT_EQ(want["case"], conv["name"]);
      ordered_json extra = ordered_json::object();
      if (conv.contains("tools")) extra["tools"] = conv["tools"];
      const std::string where = name + "/" + conv["name"].get<std::string>();
      if (want.contains("error")) {
        try {
          tmpl.render(conv["messages"], conv["add_generation_prompt"], extra);
          ADD_FAILURE() << where << ": expected an error: " << want["error"];
        } catch (const jinja::RaisedError& e) {
          EXPECT_EQ(std::string(e.what()), want["error"].get<std::string>()) << where;
        }
      } else {
        EXPECT_EQ(tmpl.render(conv["messages"], conv["add_generation_prompt"], extra),
                  want["output"].get<std::string>())
            << where;
      }
      ++compared;
    }
  }
  for (const auto& s : cases["snippets"]) {
    const ordered_json& want = expected.at(i++);
    ASSERT_EQ(want["case"], s["name"]);
    const std::string where = "snippet/" + s["name"].get<std::string>();
    if (want.contains("error")) {
      EXPECT_THROW(render_snippet(s["template"], s["vars"]), jinja::RaisedError) << where;
    } else {
      try {
        EXPECT_EQ(render_snippet(s["template"], s["vars"]), want["output"].get<std::string>()) << where;
      } catch (const std::exception& e) {
        ADD_FAILURE() << where << ": " << e.what();
      }
    }
    ++compared;
  }
  EXPECT_EQ(i, expected.size());
  EXPECT_GE(compared, 100u);
}

TEST(ChatTemplate, FallbackIsTheFixtureTemplate) {
  EXPECT_EQ(std::string(ChatTemplate::fallback_source()),
            test::read_file(fixture_dir() / "templates" / "fdpp_fallback.jinja"));
}

TEST(ChatTemplate, ModelWithoutTemplateGetsTheFallback) {
  FDPP_REQUIRE_PATH(test::stories_model_dir());
  const ChatTemplate t = ChatTemplate::for_model(test::stories_model_dir());
  EXPECT_TRUE(t.is_fallback());
  EXPECT_EQ(t.bos_token(), "<s>");
  const ordered_json msgs = ordered_json::parse(R"([{"role":"user","content":"Hi"}])");
  EXPECT_EQ(t.render(msgs, true), "<s>User: Hi\nAssistant:");
}

TEST(ChatTemplate, ReadsTemplateFromTokenizerConfigAndJinjaFile) {
  test::TempDir dir;
  test::write_file(dir / "tokenizer_config.json",
                   R"({"bos_token": {"content": "<B>"}, "eos_token": "<E>",
                       "chat_template": [{"name": "tool_use", "template": "x"},
                                         {"name": "default", "template": "{{ bos_token }}{{ messages[0].content }}{{ eos_token }}"}]})");
  const ordered_json msgs = ordered_json::parse(R"([{"role":"user","content":"Hi"}])");
  const ChatTemplate t = ChatTemplate::for_model(dir.path());
  EXPECT_FALSE(t.is_fallback());
  EXPECT_EQ(t.render(msgs, false), "<B>Hi<E>");

  test::TempDir dir2;
  test::write_file(dir2 / "tokenizer_config.json", R"({"bos_token": "<s>"})");
  test::write_file(dir2 / "chat_template.jinja", "{% for m in messages %}[{{ m.role }}]{% endfor %}");
  EXPECT_EQ(ChatTemplate::for_model(dir2.path()).render(msgs, false), "[user]");

  test::TempDir dir3;
  test::write_file(dir3 / "tokenizer_config.json", R"({"chat_template": "{% if %}"})");
  try {
    ChatTemplate::for_model(dir3.path());
    FAIL() << "expected a parse error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kParse);
    EXPECT_NE(std::string(e.what()).find("tokenizer_config.json"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("line 1"), std::string::npos) << e.what();
  }
}

// Python Jinja2 semantics where @huggingface/jinja differs or lacks the feature.
TEST(JinjaTemplate, PythonSemantics) {
  EXPECT_EQ(render_snippet("{{ -7 % 3 }} {{ -7 // 2 }} {{ 7.5 // 2 }}"), "2 -4 3.0");
  EXPECT_EQ(render_snippet("{{ 'xxhixx'.strip('x') }}|{{ 'abcba'.lstrip('ab') }}"), "hi|cba");
  EXPECT_EQ(render_snippet("{{ true }} {{ false }} {{ none }} {{ [1, 'a', none] }} {{ {'k': 'v'} }}"),
            "True False None [1, 'a', None] {'k': 'v'}");
  EXPECT_EQ(render_snippet("{{ 1e20 }} {{ 0.0001 }} {{ 1.5e-7 }} {{ 2.0 }}"), "1e+20 0.0001 1.5e-07 2.0");
  EXPECT_EQ(render_snippet("{% if 6 is divisibleby(3) and 7 is not divisibleby 3 %}y{% endif %}"), "y");
  EXPECT_EQ(render_snippet("{{ xs | select('odd') | join }}{{ xs | reject('odd') | join }}{{ xs | max }}{{ xs | min }}",
                           {{"xs", {1, 2, 3, 4}}}),
            "132441");
  EXPECT_EQ(render_snippet("{{ missing | d('x') }}{{ 2.5 | round }}{{ 2.567 | round(2) }}"), "x3.02.57");
  EXPECT_EQ(render_snippet("x\n    {%+ if true %}y{% endif +%}\nz"), "x\n    y\nz");
  EXPECT_EQ(render_snippet("a{% raw %}{{ b }}{% if %}{% endraw %}c"), "a{{ b }}{% if %}c");
  EXPECT_EQ(render_snippet("{{ 'a' in ['a'] }}{{ 'text' is string }}"), "TrueTrue");
  EXPECT_EQ(render_snippet("{% filter upper %}abc{% endfilter %}"), "ABC");
  EXPECT_EQ(render_snippet("{{ 'a\\nb' | indent(2, true) }}"), "  a\n  b");
  EXPECT_EQ(render_snippet("{% for a, b in [[1, 2], [3, 4]] %}{{ a + b }}{% endfor %}"), "37");
  EXPECT_EQ(render_snippet("{{ ('a', 'b') | join }}{{ 'ab' * 2 }}{{ [0] * 2 }}"), "ababab[0, 0]");
  EXPECT_EQ(render_snippet("{% if xs == [1, 2, 3] %}eq{% endif %}{{ 'hELLO wORLD' | capitalize }}", {{"xs", {1, 2, 3}}}),
            "eqHello world");
  EXPECT_EQ(render_snippet("{% for c in 'hé' %}[{{ c }}]{% endfor %}{{ 'hé' | length }}"), "[h][é]2");
  EXPECT_EQ(render_snippet("{{ messages[0].content.split('\\n')[1] }}",
                           {{"messages", ordered_json::parse(R"([{"content":"x\ny"}])")}}),
            "y");
}

TEST(JinjaTemplate, ErrorsNameTheLine) {
  auto message_of = [](const std::string& source) {
    try {
      render_snippet(source, {{"x", 1}});
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message_of("a\n{% for x in %}").find("line 2"), std::string::npos);
  EXPECT_NE(message_of("{% if true %}open").find("endif"), std::string::npos);
  EXPECT_NE(message_of("{{ 'unterminated }}").find("unterminated"), std::string::npos);
  EXPECT_NE(message_of("\n\n{{ x | no_such_filter }}").find("line 3"), std::string::npos);
  EXPECT_NE(message_of("{{ x | no_such_filter }}").find("no_such_filter"), std::string::npos);
  EXPECT_NE(message_of("{{ 'a' + 1 }}").find("concatenate"), std::string::npos);
  EXPECT_NE(message_of("{% endfor %}").find("endfor"), std::string::npos);
  EXPECT_EQ(message_of("{{ raise_exception('Only user roles') }}"), "Only user roles");
}

}  // namespace
}  // namespace fdpp
