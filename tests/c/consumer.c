/*
 * A C consumer of sld.h, run by sld-ffi/tests/c_consumers.rs (linked
 * against the static and the shared library, under valgrind where it is
 * installed, and against the no_std firmware library with -DSLD_NO_STD).
 *
 * Usage: consumer KIT_DIR, where KIT_DIR holds what `sld model beacons`
 * writes: model.sld, image.ppm and truth.txt (the pose the image was
 * rendered from). Every check compares with that ground truth or with an
 * exact status; the exit code is the number of failed checks.
 */
#include "sld.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures = 0;

#define CHECK(cond, ...)                                                 \
  do {                                                                   \
    if (!(cond)) {                                                       \
      fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);    \
      fprintf(stderr, __VA_ARGS__);                                      \
      fprintf(stderr, " (last error: %s)\n", sld_last_error());          \
      failures++;                                                        \
    }                                                                    \
  } while (0)

/* Every row of the bad-input matrix: the exact status, and a failure
 * always explains itself in this thread's last error. */
#define EXPECT_STATUS(call, want)                                        \
  do {                                                                   \
    enum SldStatus got_ = (call);                                        \
    CHECK(got_ == (want), "%s returned %s, want %s", #call,              \
          sld_status_name(got_), sld_status_name(want));                 \
    CHECK(got_ == SLD_STATUS_OK || strlen(sld_last_error()) > 0,         \
          "%s failed without a message", #call);                         \
  } while (0)

static unsigned char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *buf = malloc(n > 0 ? (size_t)n : 1);
  if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
    free(buf);
    buf = NULL;
  }
  fclose(f);
  *len = (size_t)n;
  return buf;
}

/* Binary PPM (P6, maxval 255) → tightly packed RGB. */
static unsigned char *read_ppm(const char *path, uint32_t *w, uint32_t *h) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  int maxval = 0;
  if (fscanf(f, "P6 %u %u %d", w, h, &maxval) != 3 || maxval != 255) {
    fclose(f);
    return NULL;
  }
  fgetc(f); /* the single whitespace after the header */
  size_t n = (size_t)*w * *h * 3;
  unsigned char *px = malloc(n);
  if (px && fread(px, 1, n, f) != n) {
    free(px);
    px = NULL;
  }
  fclose(f);
  return px;
}

typedef struct Truth {
  uint32_t width, height;
  SldCamera camera;
  double r[9], t[3];
} Truth;

static int read_truth(const char *path, Truth *tr) {
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  char line[512];
  int row = 0;
  while (fgets(line, sizeof line, f) && row < 3) {
    if (line[0] == '#') continue;
    int ok;
    if (row == 0)
      ok = sscanf(line, "%u %u %lf %lf %lf %lf %lf", &tr->width, &tr->height, &tr->camera.fx,
                  &tr->camera.fy, &tr->camera.cx, &tr->camera.cy, &tr->camera.kappa) == 7;
    else if (row == 1)
      ok = sscanf(line, "%lf %lf %lf %lf %lf %lf %lf %lf %lf", &tr->r[0], &tr->r[1], &tr->r[2],
                  &tr->r[3], &tr->r[4], &tr->r[5], &tr->r[6], &tr->r[7], &tr->r[8]) == 9;
    else
      ok = sscanf(line, "%lf %lf %lf", &tr->t[0], &tr->t[1], &tr->t[2]) == 3;
    if (!ok) break;
    row++;
  }
  fclose(f);
  return row == 3;
}

/* Angle of R_a R_bᵀ in degrees, and the distance between camera centres. */
static double rotation_error_deg(const double *a, const double *b) {
  double tr = 0;
  for (int i = 0; i < 3; i++)
    for (int k = 0; k < 3; k++) tr += a[3 * i + k] * b[3 * i + k];
  double c = (tr - 1) / 2;
  if (c > 1) c = 1;
  if (c < -1) c = -1;
  return acos(c) * 180.0 / 3.14159265358979323846;
}

static void centre_of(const double *r, const double *t, double *c) {
  for (int k = 0; k < 3; k++) c[k] = -(r[k] * t[0] + r[3 + k] * t[1] + r[6 + k] * t[2]);
}

static double position_error(const SldPose *p, const Truth *tr) {
  double c[3];
  centre_of(tr->r, tr->t, c);
  double d = 0;
  for (int k = 0; k < 3; k++) d += (p->centre[k] - c[k]) * (p->centre[k] - c[k]);
  return sqrt(d);
}

/* Projects world point x with the truth pose and camera (no distortion). */
static void project(const Truth *tr, const double *x, double *uv) {
  double p[3];
  for (int i = 0; i < 3; i++)
    p[i] = tr->r[3 * i] * x[0] + tr->r[3 * i + 1] * x[1] + tr->r[3 * i + 2] * x[2] + tr->t[i];
  uv[0] = tr->camera.fx * p[0] / p[2] + tr->camera.cx;
  uv[1] = tr->camera.fy * p[1] / p[2] + tr->camera.cy;
}

static void check_model_loading(const unsigned char *model, size_t len, const char *dir) {
  SldLocalizer *h = (SldLocalizer *)&h; /* must be overwritten with NULL */
  EXPECT_STATUS(sld_localizer_new(NULL, len, &h), SLD_STATUS_NULL_POINTER);
  CHECK(h == NULL, "failed creation must leave *out NULL");
  CHECK(strstr(sld_last_error(), "model") != NULL, "message names the argument: %s", sld_last_error());
  EXPECT_STATUS(sld_localizer_new(model, len, NULL), SLD_STATUS_NULL_POINTER);
  EXPECT_STATUS(sld_localizer_new(model, 0, &h), SLD_STATUS_INVALID_MODEL);
  EXPECT_STATUS(sld_localizer_new(model, len / 2, &h), SLD_STATUS_INVALID_MODEL);
  CHECK(h == NULL && strlen(sld_last_error()) > 0, "truncated model explained");
  EXPECT_STATUS(sld_localizer_new(model, 7, &h), SLD_STATUS_INVALID_MODEL);
  /* A corrupted header (first byte of the JSON length). */
  unsigned char *bad = malloc(len);
  memcpy(bad, model, len);
  bad[0] ^= 0x5a;
  EXPECT_STATUS(sld_localizer_new(bad, len, &h), SLD_STATUS_INVALID_MODEL);
  free(bad);
  CHECK(h == NULL, "still NULL");
#ifdef SLD_STD
  char path[1024];
  snprintf(path, sizeof path, "%s/does-not-exist.sld", dir);
  EXPECT_STATUS(sld_localizer_new_from_file(path, &h), SLD_STATUS_IO);
  CHECK(strstr(sld_last_error(), "does-not-exist") != NULL, "message names the file");
  EXPECT_STATUS(sld_localizer_new_from_file(NULL, &h), SLD_STATUS_NULL_POINTER);
  snprintf(path, sizeof path, "%s/truth.txt", dir);
  EXPECT_STATUS(sld_localizer_new_from_file(path, &h), SLD_STATUS_INVALID_MODEL);
  snprintf(path, sizeof path, "%s/model.sld", dir);
  EXPECT_STATUS(sld_localizer_new_from_file(path, &h), SLD_STATUS_OK);
  sld_localizer_free(h);
#else
  (void)dir;
#endif
  sld_localizer_free(NULL);
}

static void check_localize(SldLocalizer *h, const unsigned char *rgb, const Truth *tr) {
  SldModelInfo info;
  EXPECT_STATUS(sld_localizer_info(h, &info), SLD_STATUS_OK);
  CHECK(info.input_width == tr->width && info.input_height == tr->height, "input %ux%u",
        info.input_width, info.input_height);
  CHECK(info.landmarks >= 4 && info.arena_bytes > 0, "landmarks %u arena %zu", info.landmarks,
        info.arena_bytes);
  uint32_t l = info.landmarks;

  SldImage img = {tr->width, tr->height, (size_t)tr->width * 3, SLD_PIXEL_FORMAT_RGB8, rgb};
  SldLocalization loc;
  EXPECT_STATUS(sld_localizer_localize(h, &img, &tr->camera, &loc), SLD_STATUS_OK);
  double dt = position_error(&loc.pose, tr);
  double dr = rotation_error_deg(loc.pose.rotation, tr->r);
  printf("localized: %u/%u inliers, %.3f mm, %.4f deg, cnn %.0f us, pnp %.0f us\n", loc.inliers,
         loc.detections, dt * 1e3, dr, loc.times.cnn_us, loc.times.pnp_us);
  CHECK(dt < 0.01 && dr < 0.1, "pose error %.4f m %.4f deg", dt, dr);
  CHECK(loc.detections == l && loc.inliers == l, "%u detections %u inliers of %u", loc.detections,
        loc.inliers, l);
  for (int i = 0; i < 3; i++)
    CHECK(fabs(loc.pose.translation[i] - tr->t[i]) < 0.01, "t[%d] %f vs %f", i,
          loc.pose.translation[i], tr->t[i]);

#ifdef SLD_STD
  /* Threads: the same pose, bit for bit; a count out of range is refused. */
  EXPECT_STATUS(sld_localizer_set_threads(h, 3), SLD_STATUS_OK);
  SldLocalization threaded;
  EXPECT_STATUS(sld_localizer_localize(h, &img, &tr->camera, &threaded), SLD_STATUS_OK);
  CHECK(memcmp(threaded.pose.rotation, loc.pose.rotation, sizeof loc.pose.rotation) == 0 &&
            memcmp(threaded.pose.translation, loc.pose.translation, sizeof loc.pose.translation) == 0,
        "3 threads changed the pose");
  EXPECT_STATUS(sld_localizer_set_threads(h, 0), SLD_STATUS_INVALID_ARGUMENT);
  EXPECT_STATUS(sld_localizer_set_threads(h, 1000), SLD_STATUS_INVALID_ARGUMENT);
  EXPECT_STATUS(sld_localizer_set_threads(h, 1), SLD_STATUS_OK);
#endif

  /* The reliability gate: the evidence behind the pose, and a gate it fails. */
  SldPoseQuality q;
  EXPECT_STATUS(sld_localizer_last_quality(h, &q), SLD_STATUS_OK);
  CHECK(q.accepted == 1 && q.inliers == l && q.inlier_ratio > 0.99f, "quality %u %u %f", q.accepted,
        q.inliers, q.inlier_ratio);
  SldGate gate, strict;
  EXPECT_STATUS(sld_localizer_gate(h, &gate), SLD_STATUS_OK);
  strict = gate;
  strict.min_inliers = l + 1;
  EXPECT_STATUS(sld_localizer_set_gate(h, &strict), SLD_STATUS_OK);
  SldLocalization gated;
  EXPECT_STATUS(sld_localizer_localize(h, &img, &tr->camera, &gated), SLD_STATUS_NO_POSE);
  EXPECT_STATUS(sld_localizer_last_quality(h, &q), SLD_STATUS_OK);
  CHECK(q.accepted == 0 && q.inliers == l, "rejected quality %u %u", q.accepted, q.inliers);
  strict.min_inlier_ratio = 2.0f;
  EXPECT_STATUS(sld_localizer_set_gate(h, &strict), SLD_STATUS_INVALID_ARGUMENT);
  EXPECT_STATUS(sld_localizer_set_gate(h, NULL), SLD_STATUS_NULL_POINTER);
  EXPECT_STATUS(sld_localizer_set_gate(h, &gate), SLD_STATUS_OK);

  /* Detections, in image pixels, against the projections of the landmarks. */
  double *xyz = malloc(sizeof(double) * 3 * l);
  EXPECT_STATUS(sld_localizer_landmarks(h, xyz, l - 1), SLD_STATUS_BUFFER_TOO_SMALL);
  EXPECT_STATUS(sld_localizer_landmarks(h, xyz, l), SLD_STATUS_OK);
  SldDetection *det = malloc(sizeof(SldDetection) * l);
  size_t count = 0;
  EXPECT_STATUS(sld_localizer_detections(h, det, 1, &count), SLD_STATUS_BUFFER_TOO_SMALL);
  CHECK(count == l, "count reports the number needed: %zu", count);
  EXPECT_STATUS(sld_localizer_detections(h, det, l, &count), SLD_STATUS_OK);
  for (size_t i = 0; i < count; i++) {
    double uv[2];
    project(tr, &xyz[3 * det[i].landmark], uv);
    double e = hypot(det[i].u - uv[0], det[i].v - uv[1]);
    CHECK(e < 0.5, "landmark %u detected %.3f px from its projection", det[i].landmark, e);
  }

  /* The same image with padded rows, and as BGR: the same pose, exactly. */
  size_t stride = (size_t)tr->width * 3 + 13;
  unsigned char *padded = malloc(stride * tr->height);
  unsigned char *bgr = malloc((size_t)tr->width * tr->height * 3);
  for (uint32_t y = 0; y < tr->height; y++) {
    memcpy(padded + y * stride, rgb + (size_t)y * tr->width * 3, (size_t)tr->width * 3);
    memset(padded + y * stride + tr->width * 3, 0xAB, 13);
  }
  for (size_t i = 0; i < (size_t)tr->width * tr->height; i++) {
    bgr[3 * i] = rgb[3 * i + 2];
    bgr[3 * i + 1] = rgb[3 * i + 1];
    bgr[3 * i + 2] = rgb[3 * i];
  }
  SldLocalization loc2;
  SldImage pimg = {tr->width, tr->height, stride, SLD_PIXEL_FORMAT_RGB8, padded};
  EXPECT_STATUS(sld_localizer_localize(h, &pimg, &tr->camera, &loc2), SLD_STATUS_OK);
  CHECK(memcmp(&loc.pose, &loc2.pose, sizeof loc.pose) == 0, "padded stride gives the same pose");
  SldImage bimg = {tr->width, tr->height, (size_t)tr->width * 3, SLD_PIXEL_FORMAT_BGR8, bgr};
  EXPECT_STATUS(sld_localizer_localize(h, &bimg, &tr->camera, &loc2), SLD_STATUS_OK);
  CHECK(memcmp(&loc.pose, &loc2.pose, sizeof loc.pose) == 0, "BGR gives the same pose");

  /* A gray image loses the colours the beacons are told apart by. */
  SldImage gimg = {tr->width, tr->height, (size_t)tr->width, SLD_PIXEL_FORMAT_GRAY8, rgb};
  EXPECT_STATUS(sld_localizer_localize(h, &gimg, &tr->camera, &loc2), SLD_STATUS_NO_POSE);
  CHECK(strlen(sld_localizer_last_error(h)) > 0, "no-pose explained on the handle");

  /* Bad arguments: the right status, a message, and the handle still works. */
  SldImage bad = img;
  bad.stride = (size_t)tr->width * 3 - 1;
  EXPECT_STATUS(sld_localizer_localize(h, &bad, &tr->camera, &loc2), SLD_STATUS_INVALID_IMAGE);
  CHECK(strstr(sld_localizer_last_error(h), "stride") != NULL, "handle message: %s",
        sld_localizer_last_error(h));
  bad = img;
  bad.width = 0;
  EXPECT_STATUS(sld_localizer_localize(h, &bad, &tr->camera, &loc2), SLD_STATUS_INVALID_IMAGE);
  bad = img;
  bad.data = NULL;
  EXPECT_STATUS(sld_localizer_localize(h, &bad, &tr->camera, &loc2), SLD_STATUS_NULL_POINTER);
  bad = img;
  bad.format = 7;
  EXPECT_STATUS(sld_localizer_localize(h, &bad, &tr->camera, &loc2), SLD_STATUS_INVALID_ARGUMENT);
  bad = img;
  bad.stride = SIZE_MAX / 2;
  EXPECT_STATUS(sld_localizer_localize(h, &bad, &tr->camera, &loc2), SLD_STATUS_INVALID_IMAGE);
  SldCamera cam = tr->camera;
  cam.fx = 0;
  EXPECT_STATUS(sld_localizer_localize(h, &img, &cam, &loc2), SLD_STATUS_INVALID_CAMERA);
  cam = tr->camera;
  cam.cy = NAN;
  EXPECT_STATUS(sld_localizer_localize(h, &img, &cam, &loc2), SLD_STATUS_INVALID_CAMERA);
  EXPECT_STATUS(sld_localizer_localize(h, NULL, &tr->camera, &loc2), SLD_STATUS_NULL_POINTER);
  EXPECT_STATUS(sld_localizer_localize(h, &img, NULL, &loc2), SLD_STATUS_NULL_POINTER);
  EXPECT_STATUS(sld_localizer_localize(h, &img, &tr->camera, NULL), SLD_STATUS_NULL_POINTER);
  EXPECT_STATUS(sld_localizer_localize(NULL, &img, &tr->camera, &loc2), SLD_STATUS_NULL_POINTER);
  EXPECT_STATUS(sld_localizer_info(NULL, &info), SLD_STATUS_NULL_POINTER);
  CHECK(strcmp(sld_localizer_last_error(NULL), "") == 0, "NULL handle gives an empty message");
  EXPECT_STATUS(sld_localizer_localize(h, &img, &tr->camera, &loc2), SLD_STATUS_OK);
  CHECK(memcmp(&loc.pose, &loc2.pose, sizeof loc.pose) == 0, "same pose after the bad calls");

  free(xyz);
  free(det);
  free(padded);
  free(bgr);
}

/* Decode + PnP alone, on heatmaps rendered here from the truth. */
static void check_geometry(SldLocalizer *h, const Truth *tr) {
  SldModelInfo info;
  sld_localizer_info(h, &info);
  uint32_t l = info.landmarks;
  double *xyz = malloc(sizeof(double) * 3 * l);
  sld_localizer_landmarks(h, xyz, l);

  /* Gaussian heatmaps (σ = 1 cell) at stride 8, cells centred on 8x8 blocks. */
  const size_t hh = (tr->height + 7) / 8, ww = (tr->width + 7) / 8;
  float *maps = calloc((size_t)l * hh * ww, sizeof(float));
  double *uv = malloc(sizeof(double) * 2 * l);
  for (uint32_t k = 0; k < l; k++) {
    project(tr, &xyz[3 * k], &uv[2 * k]);
    double gx = (uv[2 * k] - 3.5) / 8, gy = (uv[2 * k + 1] - 3.5) / 8;
    for (size_t y = 0; y < hh; y++)
      for (size_t x = 0; x < ww; x++)
        maps[(k * hh + y) * ww + x] =
            (float)exp(-((x - gx) * (x - gx) + (y - gy) * (y - gy)) / 2.0);
  }
  SldDecodeOptions opts;
  EXPECT_STATUS(sld_decode_options_default(8.0f, &opts), SLD_STATUS_OK);
  EXPECT_STATUS(sld_decode_options_default(0.0f, &opts), SLD_STATUS_INVALID_ARGUMENT);
  sld_decode_options_default(8.0f, &opts);
  SldDetection *det = malloc(sizeof(SldDetection) * l);
  size_t n = 0;
  EXPECT_STATUS(sld_decode_heatmaps(maps, l, hh, ww, &opts, det, l, &n), SLD_STATUS_OK);
  CHECK(n == l, "%zu of %u decoded", n, l);
  double *p2 = malloc(sizeof(double) * 2 * l), *p3 = malloc(sizeof(double) * 3 * l);
  double *conf = malloc(sizeof(double) * l);
  for (size_t i = 0; i < n; i++) {
    uint32_t k = det[i].landmark;
    double e = hypot(det[i].u - uv[2 * k], det[i].v - uv[2 * k + 1]);
    CHECK(e < 0.05, "landmark %u decoded %.4f px off", k, e);
    p2[2 * i] = det[i].u;
    p2[2 * i + 1] = det[i].v;
    memcpy(&p3[3 * i], &xyz[3 * k], sizeof(double) * 3);
    conf[i] = det[i].confidence;
  }
  /* Decode errors (count goes to n_err: n is used below). */
  size_t n_err = 0;
  EXPECT_STATUS(sld_decode_heatmaps(maps, l, hh, ww, NULL, det, l - 1, &n_err), SLD_STATUS_BUFFER_TOO_SMALL);
  EXPECT_STATUS(sld_decode_heatmaps(maps, l, 0, ww, NULL, det, l, &n_err), SLD_STATUS_INVALID_ARGUMENT);
  EXPECT_STATUS(sld_decode_heatmaps(maps, SIZE_MAX, SIZE_MAX, 2, NULL, det, SIZE_MAX, &n_err),
                SLD_STATUS_INVALID_ARGUMENT);
  EXPECT_STATUS(sld_decode_heatmaps(NULL, l, hh, ww, NULL, det, l, &n_err), SLD_STATUS_NULL_POINTER);
  EXPECT_STATUS(sld_decode_heatmaps(maps, l, hh, ww, NULL, det, l, NULL), SLD_STATUS_NULL_POINTER);
  SldDecodeOptions badopts = opts;
  badopts.refinement = 9;
  EXPECT_STATUS(sld_decode_heatmaps(maps, l, hh, ww, &badopts, det, l, &n_err), SLD_STATUS_INVALID_ARGUMENT);
  size_t peak = 0;
  for (size_t i = 0; i < hh * ww; i++)
    if (maps[i] > maps[peak]) peak = i;
  float keep = maps[peak];
  maps[peak] = NAN;
  EXPECT_STATUS(sld_decode_heatmaps(maps, l, hh, ww, NULL, det, l, &n_err), SLD_STATUS_NON_FINITE);
  maps[peak] = INFINITY;
  EXPECT_STATUS(sld_decode_heatmaps(maps, l, hh, ww, NULL, det, l, &n_err), SLD_STATUS_NON_FINITE);
  maps[peak] = keep;

  /* PnP with three gross outliers. */
  for (int k = 0; k < 3; k++) {
    p2[2 * k] += 40 + 10 * k;
    p2[2 * k + 1] -= 30;
  }
  SldPnpOptions popts;
  EXPECT_STATUS(sld_pnp_options_default(&popts), SLD_STATUS_OK);
  CHECK(popts.max_reproj_px == 8.0 && popts.min_inliers == 4, "documented defaults");
  SldPnpSolver *solver = (SldPnpSolver *)&solver;
  popts.min_inliers = 3;
  EXPECT_STATUS(sld_pnp_solver_new(64, &popts, &solver), SLD_STATUS_INVALID_ARGUMENT);
  CHECK(solver == NULL, "failed creation leaves NULL");
  sld_pnp_options_default(&popts);
  EXPECT_STATUS(sld_pnp_solver_new(2, NULL, &solver), SLD_STATUS_INVALID_ARGUMENT);
  EXPECT_STATUS(sld_pnp_solver_new(l, &popts, &solver), SLD_STATUS_OK);
  SldPnpResult res;
  unsigned char *mask = malloc(l);
  SldCamera cam = tr->camera;
  EXPECT_STATUS(sld_pnp_solve(solver, p2, p3, conf, n, &cam, &res, mask), SLD_STATUS_OK);
  double dr = rotation_error_deg(res.pose.rotation, tr->r);
  double dt = position_error(&res.pose, tr);
  printf("pnp: %u/%zu inliers, %.4f mm, %.5f deg, %u iterations\n", res.inliers, n, dt * 1e3, dr,
         res.iterations);
  CHECK(dt < 1e-3 && dr < 0.01, "pose error %.6f m %.6f deg", dt, dr);
  CHECK(res.inliers == n - 3, "%u inliers", res.inliers);
  for (size_t i = 0; i < n; i++) CHECK(mask[i] == (i >= 3), "mask[%zu] = %u", i, mask[i]);
  /* PnP errors. */
  EXPECT_STATUS(sld_pnp_solve(solver, p2, p3, conf, l + 1, &cam, &res, NULL), SLD_STATUS_BUFFER_TOO_SMALL);
  CHECK(strstr(sld_pnp_solver_last_error(solver), "capacity") != NULL, "solver message: %s",
        sld_pnp_solver_last_error(solver));
  EXPECT_STATUS(sld_pnp_solve(solver, p2, p3, conf, 3, &cam, &res, NULL), SLD_STATUS_NO_POSE);
  EXPECT_STATUS(sld_pnp_solve(solver, NULL, p3, conf, n, &cam, &res, NULL), SLD_STATUS_NULL_POINTER);
  EXPECT_STATUS(sld_pnp_solve(NULL, p2, p3, conf, n, &cam, &res, NULL), SLD_STATUS_NULL_POINTER);
  double keepx = p3[3 * 5];
  p3[3 * 5] = NAN;
  EXPECT_STATUS(sld_pnp_solve(solver, p2, p3, conf, n, &cam, &res, NULL), SLD_STATUS_NON_FINITE);
  p3[3 * 5] = keepx;
  conf[4] = -1;
  EXPECT_STATUS(sld_pnp_solve(solver, p2, p3, conf, n, &cam, &res, NULL), SLD_STATUS_INVALID_ARGUMENT);
  cam.fy = -1;
  EXPECT_STATUS(sld_pnp_solve(solver, p2, p3, NULL, n, &cam, &res, NULL), SLD_STATUS_INVALID_CAMERA);
  cam = tr->camera;
  /* All points the same: degenerate, not a crash. */
  for (size_t i = 0; i < n; i++) memcpy(&p3[3 * i], &p3[0], sizeof(double) * 3);
  EXPECT_STATUS(sld_pnp_solve(solver, p2, p3, NULL, n, &cam, &res, NULL), SLD_STATUS_NO_POSE);
  sld_pnp_solver_free(solver);
  sld_pnp_solver_free(NULL);

  free(mask);
  free(maps);
  free(uv);
  free(det);
  free(p2);
  free(p3);
  free(conf);
  free(xyz);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s KIT_DIR\n", argv[0]);
    return 2;
  }
  const char *dir = argv[1];
  char path[1024];
  char want[32];
  snprintf(want, sizeof want, "%d.%d.%d", SLD_VERSION_MAJOR, SLD_VERSION_MINOR, SLD_VERSION_PATCH);
  CHECK(strcmp(sld_version(), want) == 0, "library %s, header %s", sld_version(), want);
  CHECK(strcmp(sld_status_name(SLD_STATUS_NO_POSE), "no pose") == 0, "status names");

  Truth tr;
  snprintf(path, sizeof path, "%s/truth.txt", dir);
  if (!read_truth(path, &tr)) {
    fprintf(stderr, "cannot read %s\n", path);
    return 2;
  }
  uint32_t w = 0, h = 0;
  snprintf(path, sizeof path, "%s/image.ppm", dir);
  unsigned char *rgb = read_ppm(path, &w, &h);
  size_t len = 0;
  snprintf(path, sizeof path, "%s/model.sld", dir);
  unsigned char *model = read_file(path, &len);
  if (!rgb || !model || w != tr.width || h != tr.height) {
    fprintf(stderr, "cannot read the kit in %s\n", dir);
    return 2;
  }

  check_model_loading(model, len, dir);

  /* The copying constructor: the buffer may go right away. */
  unsigned char *copy = malloc(len);
  memcpy(copy, model, len);
  SldLocalizer *loc = NULL;
  EXPECT_STATUS(sld_localizer_new(copy, len, &loc), SLD_STATUS_OK);
  memset(copy, 0, len);
  free(copy);
  if (loc) {
    check_localize(loc, rgb, &tr);
    check_geometry(loc, &tr);
    sld_localizer_free(loc);
  }

  /* The borrowing constructor reads the caller's buffer in place. */
  SldLocalizer *borrowed = NULL;
  EXPECT_STATUS(sld_localizer_new_borrowed(model, len, &borrowed), SLD_STATUS_OK);
  if (borrowed) {
    SldModelInfo info;
    sld_localizer_info(borrowed, &info);
    CHECK(info.zero_copy || ((uintptr_t)model % 4) != 0, "aligned buffer read in place");
    SldImage img = {w, h, (size_t)w * 3, SLD_PIXEL_FORMAT_RGB8, rgb};
    SldLocalization out;
    EXPECT_STATUS(sld_localizer_localize(borrowed, &img, &tr.camera, &out), SLD_STATUS_OK);
    CHECK(position_error(&out.pose, &tr) < 0.01, "borrowed model localizes");
    sld_localizer_free(borrowed);
  }

  free(model);
  free(rgb);
  if (failures == 0) printf("all C checks passed\n");
  return failures;
}
