// Configured faults of the simulated NPU: parsing and the gate that applies them
// (syntax and semantics in npu_faults.h).
#include "npu_faults.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <sstream>

namespace hal::npu_sim {

namespace {

std::string strip_spaces(const std::string& s) {
  std::string out;
  for (char c : s)
    if (!std::isspace(static_cast<unsigned char>(c))) out += c;
  return out;
}

bool parse_u64(std::string_view text, uint64_t* out) {
  if (text.empty()) return false;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && ptr == text.data() + text.size();
}

constexpr const char* kSyntax =
    "expected npu:N:lost@op=K, npu:N:ecc@op=K, npu:N:timeout@op=K or npu:N:slow=F[x][@op=K] "
    "(@cmd=K counts every command)";

Result<FaultSpec> parse_entry(const std::string& entry, const std::string& where) {
  auto bad = [&](const std::string& why) {
    return invalid_argument(where + ": fault '" + entry + "': " + why);
  };
  FaultSpec f;
  f.text = entry;
  std::string_view s = entry;
  if (s.substr(0, 4) != "npu:") return bad(std::string("does not start with npu:N; ") + kSyntax);
  s.remove_prefix(4);
  const size_t colon = s.find(':');
  if (colon == std::string_view::npos) return bad(kSyntax);
  uint64_t device = 0;
  if (!parse_u64(s.substr(0, colon), &device) || device > 4095) {
    // (Built with append: GCC 12 warns falsely (-Wrestrict) on "'" + std::string(...).)
    std::string why = "'";
    why.append(s.substr(0, colon)).append("' is not a device number (npu:0, npu:1, ...)");
    return bad(why);
  }
  f.device = uint32_t(device);
  s.remove_prefix(colon + 1);

  std::string_view head = s, trigger;
  if (const size_t at = s.find('@'); at != std::string_view::npos) {
    head = s.substr(0, at);
    trigger = s.substr(at + 1);
    if (trigger.empty()) return bad("'@' needs a trigger: @op=K or @cmd=K");
  }
  std::string_view kind = head, value;
  bool has_value = false;
  if (const size_t eq = head.find('='); eq != std::string_view::npos) {
    kind = head.substr(0, eq);
    value = head.substr(eq + 1);
    has_value = true;
  }
  if (kind == "lost") {
    f.kind = FaultKind::kLost;
  } else if (kind == "ecc") {
    f.kind = FaultKind::kEcc;
  } else if (kind == "timeout") {
    f.kind = FaultKind::kTimeout;
  } else if (kind == "slow") {
    f.kind = FaultKind::kSlow;
  } else {
    return bad("unknown fault kind '" + std::string(kind) + "' (kinds: lost, ecc, timeout, slow)");
  }

  if (f.kind == FaultKind::kSlow) {
    if (!has_value || value.empty()) return bad("slow needs a factor, e.g. slow=4x");
    std::string_view num = value;
    if (num.back() == 'x' || num.back() == 'X') num.remove_suffix(1);
    double factor = 0;
    auto [ptr, ec] = std::from_chars(num.data(), num.data() + num.size(), factor);
    if (num.empty() || ec != std::errc() || ptr != num.data() + num.size() ||
        !std::isfinite(factor) || factor < 1.0 || factor > 1e6)
      return bad("slow factor '" + std::string(value) +
                 "' is not a number in [1, 1e6] (e.g. slow=4x)");
    f.factor = factor;
  } else if (has_value) {
    return bad(std::string(fault_kind_name(f.kind)) + " takes no value; give its trigger, e.g. " +
               std::string(fault_kind_name(f.kind)) + "@op=10");
  }

  if (trigger.empty()) {
    if (f.kind != FaultKind::kSlow)
      return bad(std::string(fault_kind_name(f.kind)) + " needs a trigger: @op=K or @cmd=K");
    return f;  // slow from the start
  }
  const size_t eq = trigger.find('=');
  const std::string_view counter = trigger.substr(0, eq);
  if (eq == std::string_view::npos || (counter != "op" && counter != "cmd"))
    return bad("trigger '@" + std::string(trigger) + "' is not @op=K or @cmd=K");
  f.count_ops = counter == "op";
  if (!parse_u64(trigger.substr(eq + 1), &f.at))
    return bad("'" + std::string(trigger.substr(eq + 1)) +
               "' is not a command number (0, 1, ...: 0-based)");
  return f;
}

std::string describe(const CommandTicket& t) {
  std::ostringstream os;
  if (t.kind == CommandKind::kOp) {
    os << "op " << t.op_sequence << " (" << op_kind_name(t.op) << ", tag " << t.tag << ")";
  } else {
    os << "command " << t.sequence << " (" << command_kind_name(t.kind) << " of " << t.bytes
       << " bytes, tag " << t.tag << ")";
  }
  return os.str();
}

}  // namespace

std::string_view fault_kind_name(FaultKind kind) {
  switch (kind) {
    case FaultKind::kLost:
      return "lost";
    case FaultKind::kEcc:
      return "ecc";
    case FaultKind::kTimeout:
      return "timeout";
    case FaultKind::kSlow:
      return "slow";
  }
  return "?";
}

Result<std::vector<FaultSpec>> parse_faults(const std::string& text, const std::string& where) {
  std::vector<FaultSpec> out;
  std::stringstream ss(text);
  for (std::string item; std::getline(ss, item, ';');) {
    item = strip_spaces(item);
    if (item.empty()) continue;
    HAL_ASSIGN_OR_RETURN(FaultSpec f, parse_entry(item, where));
    out.push_back(std::move(f));
  }
  return out;
}

FaultGate::FaultGate(std::vector<FaultSpec> faults)
    : faults_(std::move(faults)), fired_(faults_.size(), 0) {}

bool FaultGate::lost() const {
  std::lock_guard<std::mutex> lock(mu_);
  return lost_ != nullptr;
}

uint64_t FaultGate::failed_commands() const {
  std::lock_guard<std::mutex> lock(mu_);
  return failed_;
}

Status FaultGate::admit(CommandTicket& t) {
  std::lock_guard<std::mutex> lock(mu_);
  // Messages do not start with the device: the HAL prefixes every plugin error with the
  // device's id. The entry quoted names it too.
  auto injected = [](const FaultSpec& f) { return " (injected fault '" + f.text + "')"; };
  if (lost_) {
    ++failed_;
    return device_lost(std::string("device lost at ") + (lost_->count_ops ? "op " : "command ") +
                       std::to_string(lost_at_) + injected(*lost_) + "; " + describe(t) +
                       " refused");
  }
  for (size_t i = 0; i < faults_.size(); ++i) {
    const FaultSpec& f = faults_[i];
    // Ops are numbered by op_sequence; every command (an op too) by sequence. A copy's
    // op_sequence is the number of ops before it, so "slow from op K" covers copies.
    const uint64_t n = f.count_ops ? t.op_sequence : t.sequence;
    if (f.kind == FaultKind::kSlow) {
      if (n >= f.at) t.duration_scale *= f.factor;
      continue;
    }
    const bool reached = n >= f.at && (!f.count_ops || t.kind == CommandKind::kOp);
    if (!reached || fired_[i]) continue;
    fired_[i] = 1;
    ++failed_;
    switch (f.kind) {
      case FaultKind::kLost:
        lost_ = &f;
        lost_at_ = n;
        return device_lost("device lost during " + describe(t) + injected(f) +
                           "; it accepts no more commands");
      case FaultKind::kEcc:
        return data_loss("uncorrectable ECC error in device memory during " + describe(t) +
                         injected(f));
      case FaultKind::kTimeout:
        return deadline_exceeded(describe(t) + " did not complete in time" + injected(f));
      case FaultKind::kSlow:
        break;
    }
  }
  return ok_status();
}

}  // namespace hal::npu_sim
