/*
 * render.c — showing what the trainer sees: 28x28 images as terminal art,
 * PNG files (libpng), and the JSON value of a prediction record:
 *   {"prediction":k,"probabilities":[p0,...,p9],"label":L,"source":"<msg id>"}
 * ("label" only when the input key carried one).
 */
#include "trainer.h"

#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void render_ascii(void *fp, const uint8_t *px)
{
    static const char ramp[] = " .:-=+*#%@";
    FILE *f = fp;
    for (int y = 0; y < 28; y++) {
        char line[28 * 2 + 2];
        for (int x = 0; x < 28; x++) {
            char c = ramp[px[y * 28 + x] * 9 / 255];
            line[2 * x] = line[2 * x + 1] = c;
        }
        line[56] = '\n';
        line[57] = 0;
        fputs(line, f);
    }
}

int render_png(const char *path, const uint8_t *px, int w, int h, char *err, size_t errlen)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        snprintf(err, errlen, "--png: cannot create %s", path);
        return -1;
    }
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info || setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        fclose(f);
        snprintf(err, errlen, "--png: writing %s failed", path);
        return -1;
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_GRAY,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < h; y++)
        png_write_row(png, px + (size_t)y * w);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    if (fclose(f) != 0) {
        snprintf(err, errlen, "--png: writing %s failed", path);
        return -1;
    }
    return 0;
}

/* Append s as a JSON string (quoted, escaped) at buf+*n; buf has room for 6x. */
static void json_string(char *buf, size_t *n, const char *s)
{
    buf[(*n)++] = '"';
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            buf[(*n)++] = '\\';
            buf[(*n)++] = (char)c;
        } else if (c < 0x20) {
            *n += (size_t)sprintf(buf + *n, "\\u%04x", c);
        } else {
            buf[(*n)++] = (char)c;
        }
    }
    buf[(*n)++] = '"';
}

char *render_prediction_json(int pred, const float *probs, int nprobs, int label,
                             const char *source)
{
    size_t cap = 128 + 24 * (size_t)nprobs + (source ? 6 * strlen(source) : 0), n = 0;
    char *buf = malloc(cap);
    if (!buf)
        return NULL;
    n += (size_t)snprintf(buf, cap, "{\"prediction\":%d,\"probabilities\":[", pred);
    for (int i = 0; i < nprobs; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%.6g", i ? "," : "", (double)probs[i]);
    buf[n++] = ']';
    if (label >= 0)
        n += (size_t)snprintf(buf + n, cap - n, ",\"label\":%d", label);
    if (source) {
        memcpy(buf + n, ",\"source\":", 10);
        n += 10;
        json_string(buf, &n, source);
    }
    buf[n++] = '}';
    buf[n] = 0;
    return buf;
}
