/* Decode only a window of a JPEG, at a DCT scale.
 *
 * libjpeg-turbo (1.5 and later) can skip rows (jpeg_skip_scanlines: entropy decoding
 * only, no inverse DCT, upsampling or colour conversion) and crop columns
 * (jpeg_crop_scanline). Pillow and torchvision expose none
 * of it, so a random crop of a large photo paid for the whole image. This module does
 * only that, in two calls:
 *
 *   window(data, scale, box)        -> the window that holds box, from the header alone
 *   decode_window(data, scale, window, out) -> decodes exactly that window into out
 *
 * The window is the box widened by two iMCUs on every side the image goes on (the
 * chroma upsampler reads across a cropped edge, and a skip restarts its context) and
 * on the left to the iMCU boundary jpeg_crop_scanline starts at, so within the box the
 * pixels are exactly those of a whole decode. The caller allocates the window, and
 * every byte of it is written: nothing uninitialised ever reaches Python.
 *
 * Settings are those of the decoders the Python side uses otherwise (torchvision's
 * decode_jpeg at full scale, Pillow's draft mode when scaled): libjpeg's defaults,
 * islow DCT and fancy upsampling.
 *
 * The rows below the window are skipped too, not left unread: any libjpeg error or
 * warning anywhere in the file (corrupt or truncated data, which libjpeg reports as
 * warnings while filling in grey) gives None, and the caller decodes the image whole,
 * which diagnoses it as before, whichever window a sample needed. The GIL is released
 * while decoding.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <jpeglib.h>

struct guarded_error {
    struct jpeg_error_mgr pub;
    jmp_buf escape;
    int warnings;
};

static void on_error(j_common_ptr cinfo) {
    struct guarded_error *err = (struct guarded_error *)cinfo->err;
    longjmp(err->escape, 1);
}

static void on_message(j_common_ptr cinfo, int level) {
    struct guarded_error *err = (struct guarded_error *)cinfo->err;
    if (level < 0) {
        err->warnings++;
    }
}

static void silent(j_common_ptr cinfo) { (void)cinfo; }

/* Errors jump back to the caller's setjmp; warnings are counted, never printed. */
static void guard(struct jpeg_decompress_struct *cinfo, struct guarded_error *err) {
    cinfo->err = jpeg_std_error(&err->pub);
    err->pub.error_exit = on_error;
    err->pub.emit_message = on_message;
    err->pub.output_message = silent;
    err->warnings = 0;
}

struct job {
    const unsigned char *data;
    size_t size;
    int scale;
    int top, left, bottom, right; /* in: the box; out (plan): the window */
    int channels; /* plan: out; decode: what out was sized for */
    unsigned char *out; /* decode: the window's (rows, columns, channels) bytes */
};

/* The header read and the decoder set up for the scale; 0 when the image is not
   plain 8-bit grey or colour, or the box misses it. */
static int prepare(struct jpeg_decompress_struct *cinfo, struct job *j) {
    jpeg_create_decompress(cinfo);
    jpeg_mem_src(cinfo, j->data, (unsigned long)j->size);
    jpeg_read_header(cinfo, TRUE);
    if (cinfo->jpeg_color_space == JCS_GRAYSCALE) {
        cinfo->out_color_space = JCS_GRAYSCALE;
    } else if (cinfo->jpeg_color_space == JCS_YCbCr || cinfo->jpeg_color_space == JCS_RGB) {
        cinfo->out_color_space = JCS_RGB;
    } else {
        return 0;
    }
    cinfo->scale_num = 1;
    cinfo->scale_denom = (unsigned int)j->scale;
    cinfo->dct_method = JDCT_ISLOW;
    cinfo->do_fancy_upsampling = TRUE;
    jpeg_calc_output_dimensions(cinfo);
    if (j->channels != 0 && j->channels != cinfo->output_components) {
        return 0;
    }
    j->channels = cinfo->output_components;
    int height = (int)cinfo->output_height, width = (int)cinfo->output_width;
    return 0 <= j->top && j->top < j->bottom && j->bottom <= height && 0 <= j->left &&
           j->left < j->right && j->right <= width;
}

/* jpeg_crop_scanline's left edge: down to a multiple of the iMCU width. */
static int crop_alignment(const struct jpeg_decompress_struct *cinfo) {
    if (cinfo->comps_in_scan == 1 && cinfo->num_components == 1) {
        return cinfo->min_DCT_scaled_size;
    }
    return cinfo->min_DCT_scaled_size * cinfo->max_h_samp_factor;
}

static int plan(struct job *j) {
    struct jpeg_decompress_struct cinfo;
    struct guarded_error err;
    volatile int ok = 0;
    guard(&cinfo, &err);
    if (setjmp(err.escape)) {
        jpeg_destroy_decompress(&cinfo);
        return 0;
    }
    if (prepare(&cinfo, j)) {
        int margin_x = 2 * cinfo.max_h_samp_factor * cinfo.min_DCT_scaled_size;
        int margin_y = 2 * cinfo.max_v_samp_factor * cinfo.min_DCT_scaled_size;
        int width = (int)cinfo.output_width, align = crop_alignment(&cinfo);
        j->top = j->top > margin_y ? j->top - margin_y : 0;
        j->left = j->left > margin_x ? j->left - margin_x : 0;
        j->left = (j->left / align) * align;
        j->right = j->right + margin_x < width ? j->right + margin_x : width;
        ok = err.warnings == 0;
    }
    jpeg_destroy_decompress(&cinfo);
    return ok;
}

static int decode(struct job *j) {
    struct jpeg_decompress_struct cinfo;
    struct guarded_error err;
    volatile int ok = 0;
    unsigned char *volatile scratch = NULL;
    guard(&cinfo, &err);
    if (setjmp(err.escape)) {
        free(scratch);
        jpeg_destroy_decompress(&cinfo);
        return 0;
    }
    if (!prepare(&cinfo, j)) {
        jpeg_destroy_decompress(&cinfo);
        return 0;
    }
    jpeg_start_decompress(&cinfo);
    JDIMENSION x = (JDIMENSION)j->left, width = (JDIMENSION)(j->right - j->left);
    if (width < cinfo.output_width) {
        jpeg_crop_scanline(&cinfo, &x, &width);
    }
    /* The window was planned to start on the crop's boundary: anything else would
       leave bytes of it unwritten. */
    if ((int)x == j->left && (int)(x + width) == j->right) {
        if (j->top > 0) {
            jpeg_skip_scanlines(&cinfo, (JDIMENSION)j->top);
        }
        size_t stride = (size_t)width * (size_t)j->channels;
        /* Rows are written relative to the window's top: never before it. */
        while ((int)cinfo.output_scanline >= j->top &&
               (int)cinfo.output_scanline < j->bottom) {
            JSAMPROW row = j->out + (size_t)((int)cinfo.output_scanline - j->top) * stride;
            if (jpeg_read_scanlines(&cinfo, &row, 1) != 1) {
                break;
            }
        }
        /* The rest of the file is read too, so damage below the window is noticed as
           a whole decode would notice it: rows skipped short of the end are entropy
           decoded (a skip to the very end reads nothing), then the last row is read
           into a scratch row. */
        if ((int)cinfo.output_scanline == j->bottom) {
            JDIMENSION last = cinfo.output_height - 1;
            if (cinfo.output_scanline < last) {
                jpeg_skip_scanlines(&cinfo, last - cinfo.output_scanline);
            }
            if (cinfo.output_scanline == last) {
                scratch = malloc(stride);
                JSAMPROW row = scratch;
                if (row != NULL) {
                    jpeg_read_scanlines(&cinfo, &row, 1); /* unread, it is refused below */
                }
            }
            ok = cinfo.output_scanline == cinfo.output_height &&
                 jpeg_finish_decompress(&cinfo) && err.warnings == 0;
        }
    }
    free(scratch);
    jpeg_destroy_decompress(&cinfo);
    return ok;
}

PyDoc_STRVAR(window_doc,
"window(data, scale, top, left, bottom, right) -> (top, left, bottom, right, channels) | None\n"
"\n"
"The window of the JPEG ``data`` decoded at 1/``scale`` (1, 2, 4 or 8) that\n"
"decode_window writes so that the box rows [top, bottom), columns [left, right)\n"
"holds exactly a whole decode's pixels, and the channels (3 colour, 1 grey). None for\n"
"anything but plain 8-bit grey or colour, a box outside the image, or any libjpeg\n"
"complaint about the header.");

static PyObject *window(PyObject *self, PyObject *args) {
    Py_buffer data;
    struct job j;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*iiiii", &data, &j.scale, &j.top, &j.left, &j.bottom,
                          &j.right)) {
        return NULL;
    }
    if (j.scale != 1 && j.scale != 2 && j.scale != 4 && j.scale != 8) {
        PyBuffer_Release(&data);
        return PyErr_Format(PyExc_ValueError, "scale must be 1, 2, 4 or 8, got %d", j.scale);
    }
    j.data = (const unsigned char *)data.buf;
    j.size = (size_t)data.len;
    j.channels = 0;
    int ok = plan(&j);
    PyBuffer_Release(&data);
    if (!ok) {
        Py_RETURN_NONE;
    }
    return Py_BuildValue("(iiiii)", j.top, j.left, j.bottom, j.right, j.channels);
}

PyDoc_STRVAR(decode_window_doc,
"decode_window(data, scale, top, left, bottom, right, out) -> bool\n"
"\n"
"Decode the window (as window() gave it) of the JPEG ``data`` at 1/``scale`` into\n"
"``out``, a writable C-contiguous uint8 buffer of (bottom - top) * (right - left) *\n"
"channels bytes, rows of interleaved channels, every byte of which is written. False\n"
"when libjpeg reported any error or warning (``out`` is then not to be used).");

static PyObject *decode_window(PyObject *self, PyObject *args) {
    Py_buffer data, out;
    PyObject *out_obj;
    struct job j;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*iiiiiO", &data, &j.scale, &j.top, &j.left, &j.bottom,
                          &j.right, &out_obj)) {
        return NULL;
    }
    if (PyObject_GetBuffer(out_obj, &out, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) != 0) {
        PyBuffer_Release(&data);
        return NULL;
    }
    int ok = 0;
    j.data = (const unsigned char *)data.buf;
    j.size = (size_t)data.len;
    j.out = (unsigned char *)out.buf;
    Py_ssize_t pixels = (Py_ssize_t)(j.bottom - j.top) * (Py_ssize_t)(j.right - j.left);
    int valid = (j.scale == 1 || j.scale == 2 || j.scale == 4 || j.scale == 8) &&
                j.top < j.bottom && j.left < j.right &&
                (out.len == pixels * 3 || out.len == pixels);
    if (valid) {
        j.channels = (int)(out.len / pixels);
        Py_BEGIN_ALLOW_THREADS
        ok = decode(&j);
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&data);
    PyBuffer_Release(&out);
    if (!valid) {
        return PyErr_Format(PyExc_ValueError,
                            "the window or its buffer does not fit: scale 1, 2, 4 or 8 and "
                            "(bottom - top) * (right - left) * channels bytes");
    }
    return PyBool_FromLong(ok);
}

static PyMethodDef methods[] = {
    {"window", window, METH_VARARGS, window_doc},
    {"decode_window", decode_window, METH_VARARGS, decode_window_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_jpeg_region",
    "Window decoding of JPEGs with libjpeg-turbo's row skipping and column cropping.", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__jpeg_region(void) { return PyModule_Create(&module); }
