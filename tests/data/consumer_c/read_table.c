/* Quantize numbers with a lloydmax JSON table, standard C library only.
 *
 *   cc -std=c99 -O2 -o read_table read_table.c
 *   read_table TABLE.json [INDEX [f32|f64]]  < values  > quantized
 *
 * Reads the "levels" and "thresholds" arrays of table INDEX (default 0) of a file written
 * by lloydmax (one table or a lloydmax.tableset/1 set), then one number per line from
 * standard input (decimal, C99 hex such as 0x1.8p+1, inf, nan) and prints Q(x) per line
 * in C99 hex, which Python's float.fromhex reads back exactly.
 *
 * Rule: Q(x) = levels[i] for thresholds[i-1] < x <= thresholds[i]; NaN stays NaN.
 * In f32 mode the input is rounded to float first and the level is printed as float:
 * C compares a float with a double threshold in double, exactly, so no boundary
 * rounding is needed here (unlike a float32 GPU kernel, see docs/consumers.md).
 *
 * This is a reader for the files lloydmax writes, not a general JSON parser: it takes
 * the INDEX-th "levels" and "thresholds" keys in the file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *read_file(const char *path)
{
    FILE *fh = fopen(path, "rb");
    if (!fh) return NULL;
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap + 1);
    size_t got;
    while (buf && (got = fread(buf + len, 1, cap - len, fh)) > 0) {
        len += got;
        if (len == cap) {
            char *bigger = realloc(buf, 2 * cap + 1);
            if (!bigger) { free(buf); buf = NULL; break; }
            buf = bigger;
            cap *= 2;
        }
    }
    fclose(fh);
    if (buf) buf[len] = '\0';
    return buf;
}

/* Parse the array after the index-th occurrence of the key "name"; returns the count,
 * or -1 when the key or a well-formed array of numbers is not found. */
static long parse_array(const char *text, const char *name, int index, double **out)
{
    char key[64];
    snprintf(key, sizeof key, "\"%s\"", name);
    const char *p = text;
    for (int seen = -1; seen < index;) {
        p = strstr(p, key);
        if (!p) return -1;
        p += strlen(key);
        while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') p++;
        if (*p == ':') seen++;
    }
    p++;
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') p++;
    if (*p != '[') return -1;
    p++;
    long n = 0, cap = 64;
    double *values = malloc(cap * sizeof *values);
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n' || *p == ',') p++;
        if (*p == ']') break;
        char *end;
        double v = strtod(p, &end); /* correctly rounded: repr() digits give the same double */
        if (end == p || !values) { free(values); return -1; }
        if (n == cap) {
            double *bigger = realloc(values, 2 * cap * sizeof *values);
            if (!bigger) { free(values); return -1; }
            values = bigger;
            cap *= 2;
        }
        values[n++] = v;
        p = end;
    }
    *out = values;
    return n;
}

/* Number of thresholds strictly below x: the level index (binary search). */
static long level_index(const double *thresholds, long n, double x)
{
    long lo = 0, hi = n;
    while (lo < hi) {
        long mid = lo + (hi - lo) / 2;
        if (thresholds[mid] < x) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 4) {
        fprintf(stderr, "usage: %s TABLE.json [INDEX [f32|f64]] < values\n", argv[0]);
        return 2;
    }
    int index = argc > 2 ? atoi(argv[2]) : 0;
    int single = argc > 3 && strcmp(argv[3], "f32") == 0;
    char *text = read_file(argv[1]);
    if (!text) { fprintf(stderr, "cannot read %s\n", argv[1]); return 2; }
    double *levels = NULL, *thresholds = NULL;
    long n_levels = parse_array(text, "levels", index, &levels);
    long n_thresholds = parse_array(text, "thresholds", index, &thresholds);
    free(text);
    if (n_levels < 2 || n_thresholds != n_levels - 1) {
        fprintf(stderr, "%s: no valid table %d\n", argv[1], index);
        return 2;
    }
    char line[128];
    while (fgets(line, sizeof line, stdin)) {
        double x = strtod(line, NULL);
        if (single) x = (float)x;
        if (x != x) { puts("nan"); continue; }
        double q = levels[level_index(thresholds, n_thresholds, x)];
        if (single) q = (float)q;
        printf("%a\n", q);
    }
    free(levels);
    free(thresholds);
    return 0;
}
