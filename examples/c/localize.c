/*
 * Localize one image with an sld model, from C.
 *
 *   localize MODEL.sld IMAGE.ppm FX FY CX CY [KAPPA]
 *
 * IMAGE.ppm is a binary PPM (P6, 8-bit RGB); FX FY CX CY are its
 * intrinsics in pixels with pixel (0, 0) at the centre of the top-left
 * pixel. Prints the world-to-camera pose (x_cam = R x_world + t, metres)
 * and the camera centre. Exit status: 0 localized, 3 no pose, 1 error.
 *
 * Try it with the known-answer kit:  sld model beacons --out kit
 *   ./localize kit/model.sld kit/image.ppm 230.4 230.4 127.5 95.5
 * and compare with kit/truth.txt.
 */
#include <sld.h>

#include <stdio.h>
#include <stdlib.h>

static unsigned char *read_ppm(const char *path, uint32_t *w, uint32_t *h) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  int maxval = 0;
  unsigned char *px = NULL;
  if (fscanf(f, "P6 %u %u %d", w, h, &maxval) == 3 && maxval == 255 && fgetc(f) != EOF) {
    size_t n = (size_t)*w * *h * 3;
    px = malloc(n);
    if (px && fread(px, 1, n, f) != n) {
      free(px);
      px = NULL;
    }
  }
  fclose(f);
  return px;
}

int main(int argc, char **argv) {
  if (argc < 7 || argc > 8) {
    fprintf(stderr, "usage: %s MODEL.sld IMAGE.ppm FX FY CX CY [KAPPA]\n", argv[0]);
    return 1;
  }
  uint32_t w = 0, h = 0;
  unsigned char *rgb = read_ppm(argv[2], &w, &h);
  if (!rgb) {
    fprintf(stderr, "cannot read %s (binary PPM, 8-bit)\n", argv[2]);
    return 1;
  }

  /* Created once: all per-frame memory is reserved here. */
  SldLocalizer *loc = NULL;
  if (sld_localizer_new_from_file(argv[1], &loc) != SLD_STATUS_OK) {
    fprintf(stderr, "cannot load model: %s\n", sld_last_error());
    free(rgb);
    return 1;
  }

  /* Per frame: no allocation inside the library. */
  SldImage image = {w, h, (size_t)w * 3, SLD_PIXEL_FORMAT_RGB8, rgb};
  SldCamera camera = {atof(argv[3]), atof(argv[4]), atof(argv[5]), atof(argv[6]),
                      argc == 8 ? atof(argv[7]) : 0.0};
  SldLocalization out;
  SldStatus st = sld_localizer_localize(loc, &image, &camera, &out);
  int code = 0;
  if (st == SLD_STATUS_OK) {
    const double *r = out.pose.rotation, *t = out.pose.translation;
    printf("R = [%9.6f %9.6f %9.6f; %9.6f %9.6f %9.6f; %9.6f %9.6f %9.6f]\n", r[0], r[1], r[2], r[3],
           r[4], r[5], r[6], r[7], r[8]);
    printf("t = [%.6f %.6f %.6f] m\n", t[0], t[1], t[2]);
    printf("camera centre = [%.6f %.6f %.6f] m\n", out.pose.centre[0], out.pose.centre[1],
           out.pose.centre[2]);
    printf("%u inliers of %u detections; cnn %.1f ms, pnp %.2f ms\n", out.inliers, out.detections,
           out.times.cnn_us / 1e3, out.times.pnp_us / 1e3);
  } else if (st == SLD_STATUS_NO_POSE) {
    printf("no pose (%u detections): %s\n", out.detections, sld_localizer_last_error(loc));
    code = 3;
  } else {
    fprintf(stderr, "error (%s): %s\n", sld_status_name(st), sld_localizer_last_error(loc));
    code = 1;
  }
  sld_localizer_free(loc);
  free(rgb);
  return code;
}
