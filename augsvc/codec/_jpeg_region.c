/* Decode only a region of a JPEG, at a DCT scale, into a caller's full-size canvas.
 *
 * libjpeg-turbo (1.5 and later) can skip whole rows (jpeg_skip_scanlines: no inverse
 * DCT, upsampling or colour conversion, and nothing at all below the last row read)
 * and crop columns (jpeg_crop_scanline). Pillow and torchvision expose neither, so a
 * random crop of a large photo paid for the whole image. This module does only that:
 * the caller says which rows and columns it needs (with a margin for the upsampler's
 * context) and where its canvas is, and gets the rows and columns actually written.
 *
 * Settings are those of the decoders the Python side uses otherwise (torchvision's
 * decode_jpeg at full scale, Pillow's draft mode when scaled): libjpeg's defaults,
 * islow DCT and fancy upsampling, so the pixels written are theirs.
 *
 * Any libjpeg error or warning (corrupt or truncated data, which libjpeg reports as
 * warnings while filling in grey) makes the call return None, and the caller decodes
 * the image the usual way, which diagnoses it as before. The GIL is released while
 * decoding.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <setjmp.h>
#include <stdio.h>
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

enum outcome { DECODED, FAILED, WRONG_CANVAS };

struct request {
    const unsigned char *data;
    size_t size;
    int scale, top, left, bottom, right, channels; /* the box, clipped on return */
    unsigned char *canvas;
    Py_ssize_t canvas_h, canvas_w;
};

static enum outcome run(struct request *r) {
    struct jpeg_decompress_struct cinfo;
    struct guarded_error err;
    /* Locals changed after setjmp and read after longjmp must be volatile. */
    volatile enum outcome result = FAILED;

    cinfo.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = on_error;
    err.pub.emit_message = on_message;
    err.pub.output_message = silent;
    err.warnings = 0;
    if (setjmp(err.escape)) {
        jpeg_destroy_decompress(&cinfo);
        return result;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, r->data, (unsigned long)r->size);
    jpeg_read_header(&cinfo, TRUE);
    if (cinfo.jpeg_color_space == JCS_GRAYSCALE) {
        cinfo.out_color_space = JCS_GRAYSCALE;
    } else if (cinfo.jpeg_color_space == JCS_YCbCr || cinfo.jpeg_color_space == JCS_RGB) {
        cinfo.out_color_space = JCS_RGB;
    } else {
        jpeg_destroy_decompress(&cinfo);
        return FAILED;
    }
    cinfo.scale_num = 1;
    cinfo.scale_denom = (unsigned int)r->scale;
    cinfo.dct_method = JDCT_ISLOW;
    cinfo.do_fancy_upsampling = TRUE;
    jpeg_calc_output_dimensions(&cinfo);
    if ((Py_ssize_t)cinfo.output_height != r->canvas_h ||
        (Py_ssize_t)cinfo.output_width != r->canvas_w ||
        cinfo.output_components != r->channels) {
        result = WRONG_CANVAS;
        jpeg_destroy_decompress(&cinfo);
        return result;
    }
    int height = (int)cinfo.output_height, width_all = (int)cinfo.output_width;
    if (r->top < 0) r->top = 0;
    if (r->left < 0) r->left = 0;
    if (r->bottom > height) r->bottom = height;
    if (r->right > width_all) r->right = width_all;
    if (r->top >= r->bottom || r->left >= r->right) {
        jpeg_destroy_decompress(&cinfo);
        return FAILED;
    }
    /* The upsampler reads chroma beyond a cropped edge, and a skip restarts its
       context: decode two iMCUs more on those sides, so the box asked for holds
       exactly the pixels of a whole-image decode. */
    int margin_x = 2 * cinfo.max_h_samp_factor * cinfo.min_DCT_scaled_size;
    int margin_y = 2 * cinfo.max_v_samp_factor * cinfo.min_DCT_scaled_size;
    int first_row = r->top > margin_y ? r->top - margin_y : 0;
    int first_col = r->left > margin_x ? r->left - margin_x : 0;
    int end_col = r->right + margin_x < width_all ? r->right + margin_x : width_all;
    jpeg_start_decompress(&cinfo);
    JDIMENSION x = (JDIMENSION)first_col;
    JDIMENSION width = (JDIMENSION)(end_col - first_col);
    if (x > 0 || width < cinfo.output_width) {
        jpeg_crop_scanline(&cinfo, &x, &width); /* widens to iMCU boundaries */
    }
    if (first_row > 0) {
        jpeg_skip_scanlines(&cinfo, (JDIMENSION)first_row);
    }
    while ((int)cinfo.output_scanline < r->bottom) {
        JSAMPROW row = r->canvas +
                       ((size_t)cinfo.output_scanline * (size_t)r->canvas_w + x) *
                           (size_t)r->channels;
        if (jpeg_read_scanlines(&cinfo, &row, 1) != 1) {
            break;
        }
    }
    if ((int)cinfo.output_scanline >= r->bottom && err.warnings == 0) {
        result = DECODED;
    }
    jpeg_abort_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    return result;
}

PyDoc_STRVAR(decode_into_doc,
"decode_into(data, scale, top, left, bottom, right, canvas) -> (top, left, bottom, right) | None\n"
"\n"
"Decode the box rows [top, bottom), columns [left, right) of the JPEG ``data`` at\n"
"1/``scale`` (1, 2, 4 or 8) into ``canvas``, a writable C-contiguous uint8 buffer of\n"
"the whole scaled image, (height, width, channels) with 3 channels for colour and 1\n"
"for grey. Returns the box clipped to the image: there the canvas holds exactly what\n"
"a whole-image decode gives (a little around it is written too, the rest is left\n"
"alone). None when libjpeg reported any error or warning or the image is not plain\n"
"8-bit grey or colour; ValueError when the canvas does not fit the image.");

static PyObject *decode_into(PyObject *self, PyObject *args) {
    Py_buffer data, canvas;
    PyObject *canvas_obj;
    struct request r;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*iiiiiO", &data, &r.scale, &r.top, &r.left, &r.bottom,
                          &r.right, &canvas_obj)) {
        return NULL;
    }
    if (PyObject_GetBuffer(canvas_obj, &canvas, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) != 0) {
        PyBuffer_Release(&data);
        return NULL;
    }
    if (r.scale != 1 && r.scale != 2 && r.scale != 4 && r.scale != 8) {
        PyBuffer_Release(&data);
        PyBuffer_Release(&canvas);
        return PyErr_Format(PyExc_ValueError, "scale must be 1, 2, 4 or 8, got %d", r.scale);
    }
    if (canvas.ndim != 3 || canvas.itemsize != 1) {
        PyBuffer_Release(&data);
        PyBuffer_Release(&canvas);
        return PyErr_Format(PyExc_ValueError,
                            "canvas must be a C-contiguous uint8 (height, width, channels) array");
    }
    r.data = (const unsigned char *)data.buf;
    r.size = (size_t)data.len;
    r.canvas = (unsigned char *)canvas.buf;
    r.canvas_h = canvas.shape[0];
    r.canvas_w = canvas.shape[1];
    r.channels = (int)canvas.shape[2];
    enum outcome outcome;
    Py_BEGIN_ALLOW_THREADS
    outcome = run(&r);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&data);
    PyBuffer_Release(&canvas);
    if (outcome == WRONG_CANVAS) {
        return PyErr_Format(PyExc_ValueError, "the canvas does not match the image at 1/%d",
                            r.scale);
    }
    if (outcome == FAILED) {
        Py_RETURN_NONE;
    }
    return Py_BuildValue("(iiii)", r.top, r.left, r.bottom, r.right);
}

static PyMethodDef methods[] = {
    {"decode_into", decode_into, METH_VARARGS, decode_into_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_jpeg_region",
    "Region decoding of JPEGs with libjpeg-turbo's row skipping and column cropping.", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__jpeg_region(void) { return PyModule_Create(&module); }
