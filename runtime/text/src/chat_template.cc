#include "hal/text/chat_template.h"

#include "jinja.h"

namespace hal::text {

namespace {

using detail::jinja::Dict;
using detail::jinja::Value;

Value from_json(const nlohmann::ordered_json& j) {
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::null:
      return Value::none();
    case nlohmann::ordered_json::value_t::boolean:
      return Value::boolean(j.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer:
    case nlohmann::ordered_json::value_t::number_unsigned:
      return Value::integer(j.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_float:
      return Value::number(j.get<double>());
    case nlohmann::ordered_json::value_t::string:
      return Value::string(j.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      std::vector<Value> items;
      for (const auto& x : j) items.push_back(from_json(x));
      return Value::make_list(std::move(items));
    }
    case nlohmann::ordered_json::value_t::object: {
      Dict d;
      for (auto it = j.begin(); it != j.end(); ++it) d.set(it.key(), from_json(it.value()));
      return Value::make_dict(std::move(d));
    }
    default:
      return Value::undefined();
  }
}

}  // namespace

Result<ChatTemplate> ChatTemplate::parse(std::string_view source, std::string_view name) {
  ChatTemplate t;
  t.name_ = std::string(name);
  t.source_ = std::string(source);
  HAL_ASSIGN_OR_RETURN(t.template_, detail::jinja::parse(source, name));
  return t;
}

Result<std::string> ChatTemplate::render(const nlohmann::ordered_json& variables) const {
  if (!variables.is_object())
    return invalid_argument("chat template '" + name_ + "': variables must be a JSON object");
  return detail::jinja::render(*template_, from_json(variables));
}

}  // namespace hal::text
