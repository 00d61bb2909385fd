"""Stand-in for Cython's pure-Python shadow module (`import cython`).

The hot modules are Cython pure-Python-mode sources. Uncompiled, they need `import cython`
to give the decorators and type names as no-ops. Cython's own package provides that, but
it is only a build requirement. When an install could not compile the extensions and
Cython is not installed where the package runs, exi._impl puts this module in its place.
It holds the names those sources use; none of them does anything here.
"""
compiled = False
NULL = None


def cclass(cls):
    return cls


def locals(**types):            # noqa: A001 - the name Cython gives it
    return lambda f: f


def cast(type_, value):
    return value


def address(value):
    return value


def sizeof(type_):
    return 8


def pointer(type_):
    return object


# C type names: only ever passed to the functions above
(int, uint, long, longlong, ulonglong, uchar, bint, Py_ssize_t,             # noqa: A001
 p_void, p_int, p_char, p_uchar, p_const_uchar) = (object,) * 13
