// A C++ consumer of sld.h: RAII ownership of the handle, the header's
// extern "C" guards, and a localisation checked against the kit's truth.
// Usage: consumer_cpp KIT_DIR (as written by `sld model beacons`).
#include "sld.h"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace {

struct LocalizerDeleter {
  void operator()(SldLocalizer* h) const noexcept { sld_localizer_free(h); }
};
using Localizer = std::unique_ptr<SldLocalizer, LocalizerDeleter>;

std::vector<unsigned char> read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

int failures = 0;

void check(bool ok, const std::string& what) {
  if (!ok) {
    std::cerr << "FAIL: " << what << " (last error: " << sld_last_error() << ")\n";
    ++failures;
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: " << argv[0] << " KIT_DIR\n";
    return 2;
  }
  const std::string dir = argv[1];

  // truth.txt: comment lines, then "w h fx fy cx cy kappa", R (9), t (3).
  std::ifstream tf(dir + "/truth.txt");
  std::string line, data;
  while (std::getline(tf, line))
    if (!line.empty() && line[0] != '#') data += line + " ";
  std::istringstream ts(data);
  unsigned w = 0, h = 0;
  SldCamera cam{};
  double r[9], t[3];
  ts >> w >> h >> cam.fx >> cam.fy >> cam.cx >> cam.cy >> cam.kappa;
  for (double& v : r) ts >> v;
  for (double& v : t) ts >> v;
  if (!ts) {
    std::cerr << "cannot read " << dir << "/truth.txt\n";
    return 2;
  }

  // image.ppm: "P6\nW H\n255\n" + RGB.
  std::ifstream pf(dir + "/image.ppm", std::ios::binary);
  std::string magic;
  unsigned pw = 0, ph = 0, maxval = 0;
  pf >> magic >> pw >> ph >> maxval;
  pf.get();
  std::vector<unsigned char> rgb(static_cast<size_t>(pw) * ph * 3);
  pf.read(reinterpret_cast<char*>(rgb.data()), static_cast<std::streamsize>(rgb.size()));
  if (magic != "P6" || pw != w || ph != h || !pf) {
    std::cerr << "cannot read " << dir << "/image.ppm\n";
    return 2;
  }

  Localizer loc;
  {
    const std::vector<unsigned char> model = read_all(dir + "/model.sld");
    SldLocalizer* raw = nullptr;
    check(sld_localizer_new(model.data(), model.size(), &raw) == SLD_STATUS_OK, "load");
    loc.reset(raw);
  }  // the copy was taken: the buffer is gone now
  if (!loc) return 1;

  const SldImage img{w, h, static_cast<size_t>(w) * 3, SLD_PIXEL_FORMAT_RGB8, rgb.data()};
  SldLocalization out{};
  check(sld_localizer_localize(loc.get(), &img, &cam, &out) == SLD_STATUS_OK, "localize");
  double c[3], err = 0, tr = 0;
  for (int k = 0; k < 3; ++k) {
    c[k] = -(r[k] * t[0] + r[3 + k] * t[1] + r[6 + k] * t[2]);
    err += (out.pose.centre[k] - c[k]) * (out.pose.centre[k] - c[k]);
  }
  for (int i = 0; i < 9; ++i) tr += out.pose.rotation[i] * r[i];
  const double deg = std::acos(std::fmin(1.0, (tr - 1) / 2)) * 180.0 / M_PI;
  std::printf("C++: %u inliers, %.3f mm, %.4f deg\n", out.inliers, std::sqrt(err) * 1e3, deg);
  check(std::sqrt(err) < 0.01 && deg < 0.1, "pose within 1 cm / 0.1 deg");

  // A wrong stride is a status, not an exception or a crash.
  SldImage bad = img;
  bad.stride = 1;
  check(sld_localizer_localize(loc.get(), &bad, &cam, &out) == SLD_STATUS_INVALID_IMAGE, "bad stride");
  check(std::string(sld_localizer_last_error(loc.get())).find("stride") != std::string::npos,
        "stride message");

  if (failures == 0) std::puts("all C++ checks passed");
  return failures;
}
