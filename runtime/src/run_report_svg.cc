// The roofline SVG of a run report (hal/runtime/run_report.h: roofline_svg): one panel per
// device, each op class at its achieved arithmetic intensity and FLOP/s under the device's
// compute and memory roofs.
#include <algorithm>
#include <cmath>
#include <string>
#include <string_view>

#include "hal/runtime/run_report.h"
#include "hal/units.h"
#include "report_format.h"

namespace hal::runtime {

namespace {

std::string xml_escape(std::string_view s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '&':
        o += "&amp;";
        break;
      case '<':
        o += "&lt;";
        break;
      case '>':
        o += "&gt;";
        break;
      case '"':
        o += "&quot;";
        break;
      default:
        o += c;
    }
  }
  return o;
}

}  // namespace

std::string roofline_svg(const RunReport& rep) {
  const double W = 720, H = 440, left = 80, right = 170, top = 40, bottom = 56;
  const double pw = W - left - right, ph = H - top - bottom;
  std::string svg;
  const double total_h = H * double(std::max<size_t>(rep.devices.size(), 1));
  svg += "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  svg += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + fmt_double(W, "%.0f") +
         "\" height=\"" + fmt_double(total_h, "%.0f") + "\" viewBox=\"0 0 " +
         fmt_double(W, "%.0f") + " " + fmt_double(total_h, "%.0f") +
         "\" font-family=\"sans-serif\" font-size=\"11\">\n";
  svg += "<title>Roofline: " + xml_escape(rep.model) + "</title>\n";
  svg += "<rect x=\"0\" y=\"0\" width=\"" + fmt_double(W, "%.0f") + "\" height=\"" +
         fmt_double(total_h, "%.0f") + "\" fill=\"white\"/>\n";
  const char* colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e",
                          "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"};
  for (size_t d = 0; d < rep.devices.size(); ++d) {
    const DeviceReport& dev = rep.devices[d];
    const double y0 = H * double(d);
    // Peaks: the device's matrix peak and bandwidth; vector peaks appear as a second roof.
    double peak = dev.total.peak_flops_per_s, bw = dev.total.peak_bandwidth_bytes_per_s;
    double vpeak = 0;
    for (const WorkStats& c : dev.op_classes) {
      peak = std::max(peak, c.peak_flops_per_s);
      if (c.engine != "matrix" && c.peak_flops_per_s > 0 && c.peak_flops_per_s < peak)
        vpeak = c.peak_flops_per_s;
    }
    if (!(peak > 0)) peak = 1e12;
    if (!(bw > 0)) bw = 1e11;
    // Axis ranges (decades) covering the roof's ridge and every point.
    double xmin = 1e-2, xmax = 1e4, ymin = peak * 1e-5, ymax = peak * 4;
    for (const WorkStats& c : dev.op_classes) {
      if (c.intensity() > 0) {
        xmin = std::min(xmin, c.intensity() / 2);
        xmax = std::max(xmax, c.intensity() * 2);
      }
      if (c.achieved_flops_per_s() > 0) ymin = std::min(ymin, c.achieved_flops_per_s() / 2);
    }
    ymin = std::min(ymin, bw * xmin);
    auto lx = [&](double x) { return std::floor(std::log10(x)); };
    xmin = std::pow(10, lx(xmin));
    xmax = std::pow(10, std::ceil(std::log10(xmax)));
    ymin = std::pow(10, lx(ymin));
    ymax = std::pow(10, std::ceil(std::log10(ymax)));
    auto X = [&](double x) {
      return left + pw * (std::log10(x) - std::log10(xmin)) / (std::log10(xmax) - std::log10(xmin));
    };
    auto Y = [&](double y) {
      return y0 + top + ph -
             ph * (std::log10(y) - std::log10(ymin)) / (std::log10(ymax) - std::log10(ymin));
    };
    auto pt = [&](double x, double y) {
      return fmt_double(X(x), "%.1f") + "," + fmt_double(Y(y), "%.1f");
    };
    svg += "<g class=\"device\" data-device=\"" + xml_escape(dev.id) + "\">\n";
    svg += "<text x=\"" + fmt_double(left, "%.0f") + "\" y=\"" + fmt_double(y0 + 24, "%.0f") +
           "\" font-size=\"14\" font-weight=\"bold\">" + xml_escape(dev.id) + " " +
           xml_escape(dev.name) + ": peak " + xml_escape(si(peak, "FLOP/s")) + ", " +
           xml_escape(si(bw, "B/s")) + "</text>\n";
    svg += "<rect x=\"" + fmt_double(left, "%.1f") + "\" y=\"" + fmt_double(y0 + top, "%.1f") +
           "\" width=\"" + fmt_double(pw, "%.1f") + "\" height=\"" + fmt_double(ph, "%.1f") +
           "\" fill=\"none\" stroke=\"#444\"/>\n";
    // Grid and tick labels per decade.
    for (double x = xmin; x <= xmax * 1.0001; x *= 10) {
      svg += "<line x1=\"" + fmt_double(X(x), "%.1f") + "\" y1=\"" + fmt_double(y0 + top, "%.1f") +
             "\" x2=\"" + fmt_double(X(x), "%.1f") + "\" y2=\"" +
             fmt_double(y0 + top + ph, "%.1f") + "\" stroke=\"#ddd\"/>\n";
      svg += "<text x=\"" + fmt_double(X(x), "%.1f") + "\" y=\"" +
             fmt_double(y0 + top + ph + 14, "%.1f") + "\" text-anchor=\"middle\">" +
             fmt_double(x, "%g") + "</text>\n";
    }
    for (double y = ymin; y <= ymax * 1.0001; y *= 10) {
      svg += "<line x1=\"" + fmt_double(left, "%.1f") + "\" y1=\"" + fmt_double(Y(y), "%.1f") +
             "\" x2=\"" + fmt_double(left + pw, "%.1f") + "\" y2=\"" + fmt_double(Y(y), "%.1f") +
             "\" stroke=\"#ddd\"/>\n";
      svg += "<text x=\"" + fmt_double(left - 4, "%.1f") + "\" y=\"" +
             fmt_double(Y(y) + 4, "%.1f") + "\" text-anchor=\"end\">" + xml_escape(si(y, "")) +
             "</text>\n";
    }
    svg += "<text x=\"" + fmt_double(left + pw / 2, "%.1f") + "\" y=\"" +
           fmt_double(y0 + H - 16, "%.1f") +
           "\" text-anchor=\"middle\">arithmetic intensity (FLOP per device-memory byte)</text>\n";
    svg += "<text transform=\"translate(16," + fmt_double(y0 + top + ph / 2, "%.1f") +
           ") rotate(-90)\" text-anchor=\"middle\">FLOP/s</text>\n";
    // The roofs: bandwidth slope to the ridge, then flat at the peak.
    auto roof = [&](double p, const char* cls, const char* dash) {
      const double ridge = p / bw;
      const double xs = std::max(xmin, ymin / bw);
      std::string pts = pt(xs, bw * xs) + " ";
      pts += ridge < xmax ? pt(ridge, p) + " " + pt(xmax, p) : pt(xmax, bw * xmax);
      svg += std::string("<polyline class=\"") + cls + "\" points=\"" + pts +
             "\" fill=\"none\" stroke=\"#000\" stroke-width=\"2\"" + dash + "/>\n";
    };
    roof(peak, "roof", "");
    if (vpeak > 0) roof(vpeak, "roof vector", " stroke-dasharray=\"6,4\"");
    // Points.
    size_t k = 0;
    for (const WorkStats& c : dev.op_classes) {
      // A class whose ops all ran inside other ops' fused groups has no rate of its own
      // (its work is in the point of the class that timed the group).
      if (c.commands > 0 && c.fused == c.commands) continue;
      const char* color = colors[k % 10];
      const double x = std::clamp(c.intensity() > 0 ? c.intensity() : xmin, xmin, xmax);
      const double y =
          std::clamp(c.achieved_flops_per_s() > 0 ? c.achieved_flops_per_s() : ymin, ymin, ymax);
      svg += "<circle class=\"op\" data-device=\"" + xml_escape(dev.id) + "\" data-op=\"" +
             xml_escape(c.name) + "\" cx=\"" + fmt_double(X(x), "%.1f") + "\" cy=\"" +
             fmt_double(Y(y), "%.1f") + "\" r=\"5\" fill=\"" + color + "\"><title>" +
             xml_escape(c.name + ": " + si(c.achieved_flops_per_s(), "FLOP/s") + ", " +
                        fmt_double(c.intensity(), "%.3g") + " FLOP/B, " + c.bound + "-bound, " +
                        fmt_double(100 * c.bandwidth_fraction(), "%.0f") + "% of bandwidth") +
             "</title></circle>\n";
      // Legend.
      const double ly = y0 + top + 10 + 16 * double(k);
      svg += "<circle cx=\"" + fmt_double(left + pw + 16, "%.1f") + "\" cy=\"" +
             fmt_double(ly, "%.1f") + "\" r=\"5\" fill=\"" + color + "\"/>\n";
      svg += "<text x=\"" + fmt_double(left + pw + 26, "%.1f") + "\" y=\"" +
             fmt_double(ly + 4, "%.1f") + "\">" + xml_escape(c.name + " (" + c.bound + ")") +
             "</text>\n";
      ++k;
    }
    svg += "</g>\n";
  }
  svg += "</svg>\n";
  return svg;
}

// ---- text --------------------------------------------------------------------------

}  // namespace hal::runtime
