// Chat templates against jinja2 (rendered the way transformers renders them) on the
// goldens of tests/text/goldens/chat: the Llama 3, ChatML/Qwen and Mistral formats and a
// template exercising the rest of the supported subset; templates outside the subset
// must fail with an error naming the construct.
#include <gtest/gtest.h>

#include "hal/text/chat_template.h"
#include "hal/text/model_text.h"
#include "text_test_support.h"

namespace hal::text {
namespace {

using json = nlohmann::ordered_json;

json read_ordered(const std::filesystem::path& p) { return json::parse(test::read_text(p)); }

TEST(ChatTemplateGolden, RendersLikeJinja2) {
  const json g = read_ordered(test::goldens_dir() / "chat" / "goldens.json");
  std::map<std::string, ChatTemplate> templates;
  for (auto it = g["templates"].begin(); it != g["templates"].end(); ++it) {
    auto t = ChatTemplate::parse(it.value().get<std::string>(), it.key());
    ASSERT_TRUE(t.ok()) << t.status().to_string();
    templates.emplace(it.key(), std::move(*t));
  }
  int rendered = 0, errors = 0;
  for (const auto& c : g["cases"]) {
    const std::string name = c["template"];
    json vars = c["variables"];
    vars["messages"] = g["conversations"][c["conversation"].get<size_t>()];
    vars["add_generation_prompt"] = c["add_generation_prompt"];
    vars["bos_token"] = g["special_tokens"][name][0];
    vars["eos_token"] = g["special_tokens"][name][1];
    const std::string what = name + " conversation " + c["conversation"].dump() +
                             " add_generation_prompt " + c["add_generation_prompt"].dump() + " " +
                             c["variables"].dump();
    auto out = templates.at(name).render(vars);
    if (c.contains("error")) {
      ASSERT_FALSE(out.ok()) << what << " rendered " << *out;
      EXPECT_NE(out.status().message().find(c["error"].get<std::string>()), std::string::npos)
          << what << ": " << out.status().message();
      EXPECT_EQ(out.status().code(), StatusCode::kInvalidArgument);
      ++errors;
    } else {
      ASSERT_TRUE(out.ok()) << what << ": " << out.status().to_string();
      EXPECT_EQ(*out, c["rendered"].get<std::string>()) << what;
      ++rendered;
    }
  }
  EXPECT_GT(rendered, 60);
  EXPECT_GT(errors, 5);
}

std::string render(std::string_view source, const json& vars = json::object()) {
  auto t = ChatTemplate::parse(source, "t");
  if (!t.ok()) return "PARSE ERROR: " + t.status().message();
  auto out = t->render(vars);
  if (!out.ok()) return "RENDER ERROR: " + out.status().message();
  return *out;
}

TEST(ChatTemplate, PythonSemantics) {
  EXPECT_EQ(render("{{ 'héllo'[1:3] }}|{{ 'héllo'|length }}|{{ 'abc'[-1] }}"), "él|5|c");
  EXPECT_EQ(render("{{ [1, 2, 3][::-1] }}|{{ (1,) }}|{{ {'a': none} }}"),
            "[3, 2, 1]|(1,)|{'a': None}");
  EXPECT_EQ(render("{{ 1.0 }} {{ 1e-5 }} {{ 1e16 }} {{ 0.1 + 0.2 }} {{ 7 // -2 }} {{ -7 % 3 }}"),
            "1.0 1e-05 1e+16 0.30000000000000004 -4 2");
  EXPECT_EQ(render("{{ \"it's\" }} {{ ['it\\'s'] }}"), "it's [\"it's\"]");
  EXPECT_EQ(render("{{ 'a' ~ none ~ 1 }}|{{ x }}|{{ x is defined }}"), "aNone1||False");
  EXPECT_EQ(
      render("{% set x = 0 %}{% for i in range(3) %}{{ x }}{% set x = i %}{% endfor %}{{ x }}"),
      "0000");  // a set inside a loop does not outlive the iteration
  EXPECT_EQ(render("{{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }}"), "True False");
  EXPECT_EQ(render("{{ '\\u00e9\\n'|tojson }}"), "\"\xC3\xA9\\n\"");
}

TEST(ChatTemplate, WhitespaceControlMatchesTransformersSettings) {
  // trim_blocks, lstrip_blocks, and the template's trailing newline dropped.
  EXPECT_EQ(render("a\n  {% if true %}\n  b\n  {% endif %}\n  {# c #}\n  d\n{{ 'e' }}\n"),
            "a\n  b\n  d\ne");
  EXPECT_EQ(render("x  {%- if true -%}  y  {%- endif %}"), "xy");
  EXPECT_EQ(render("{% raw %}{{ not evaluated }}{% endraw %}"), "{{ not evaluated }}");
}

TEST(ChatTemplate, UnsupportedConstructsAreErrorsNamingThem) {
  EXPECT_EQ(render("{% macro m() %}x{% endmacro %}"),
            "PARSE ERROR: chat template 't': line 1: unsupported statement 'macro'");
  EXPECT_NE(render("{% include 'other' %}").find("unsupported statement 'include'"),
            std::string::npos);
  EXPECT_NE(render("{{ x | frobnicate }}").find("unsupported Jinja filter 'frobnicate'"),
            std::string::npos);
  EXPECT_NE(render("{{ 1 is frobnicated }}").find("unsupported Jinja test 'frobnicated'"),
            std::string::npos);
  EXPECT_NE(render("{{ '%s' % 'x' }}").find("printf-style"), std::string::npos);
  EXPECT_NE(render("line one\n{% if %}").find("line 2"), std::string::npos);
  EXPECT_NE(render("{% for x in y %}").find("missing {% else or endfor %}"), std::string::npos);
  EXPECT_NE(render("{{ x.y.z }}", {{"x", json::object()}}).find("has no attribute 'y'"),
            std::string::npos);
  EXPECT_NE(render("{{ 'a' + 1 }}").find("unsupported operand"), std::string::npos);
  EXPECT_NE(render("{{ raise_exception('no system role') }}").find("no system role"),
            std::string::npos);
}

TEST(ChatTemplate, WorkIsBoundedButLongConversationsFit) {
  EXPECT_NE(render("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}"
                   "{% endfor %}")
                .find("the template does too much work"),
            std::string::npos);
  EXPECT_NE(render("{{ " + std::string(300, '(') + "1" + std::string(300, ')') + " }}")
                .find("nested too deeply"),
            std::string::npos);
  // A thousand-turn conversation through the ChatML template of the goldens.
  const json g = read_ordered(test::goldens_dir() / "chat" / "goldens.json");
  json messages = json::array();
  for (int i = 0; i < 1000; ++i)
    messages.push_back(
        {{"role", i % 2 ? "assistant" : "user"}, {"content", "turn " + std::to_string(i)}});
  auto t = ChatTemplate::parse(g["templates"]["chatml"].get<std::string>(), "chatml");
  ASSERT_TRUE(t.ok());
  auto out = t->render({{"messages", messages}, {"add_generation_prompt", true}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_NE(out->find("turn 999<|im_end|>"), std::string::npos);
}

TEST(ChatTemplate, ModelTextAppliesTheTemplateWithItsSpecialTokens) {
  auto text = load_model_text((test::goldens_dir() / "llama3").string());
  ASSERT_TRUE(text.ok()) << text.status().to_string();
  const json messages = json::array({{{"role", "user"}, {"content", "Hi"}}});
  auto prompt = text->apply_chat_template(messages, true);
  ASSERT_TRUE(prompt.ok()) << prompt.status().to_string();
  EXPECT_TRUE(prompt->starts_with("<|begin_of_text|><|start_header_id|>system"));
  EXPECT_TRUE(prompt->ends_with("Hi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"));
  // The rendered prompt encodes the special tokens as their ids.
  auto ids = text->tokenizer().encode(*prompt);
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(ids->front(), *text->tokenizer().token_to_id("<|begin_of_text|>"));

  // A model without a template says so.
  auto gpt2 = load_model_text((test::goldens_dir() / "gpt2").string());
  ASSERT_TRUE(gpt2.ok());
  auto none = gpt2->apply_chat_template(messages, true);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), StatusCode::kNotFound);
  EXPECT_NE(none.status().message().find("no chat template"), std::string::npos);
}

TEST(ChatTemplate, TemplateThatDoesNotParseFailsOnlyWhenUsed) {
  TokenizerConfig config;
  config.chat_templates["default"] = "{% macro greet() %}hi{% endmacro %}";
  auto gpt2 = load_model_text((test::goldens_dir() / "gpt2").string());
  ASSERT_TRUE(gpt2.ok());
  auto text = make_model_text(gpt2->shared_tokenizer(), config, {}, "m", {});
  ASSERT_TRUE(text.ok()) << text.status().to_string();
  EXPECT_TRUE(text->encode_prompt("plain prompts still work").ok());
  auto prompt = text->apply_chat_template(json::array(), true);
  ASSERT_FALSE(prompt.ok());
  EXPECT_NE(prompt.status().message().find("unsupported statement 'macro'"), std::string::npos);
}

}  // namespace
}  // namespace hal::text
