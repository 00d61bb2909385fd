# Direct access to the __slots__ of generated message classes, for the compiled engine.
# A slot is a PyObject* at a fixed offset in the instance; the offset comes from the
# class's member descriptor.  The pure-Python engine uses getattr/setattr instead.
from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF, Py_XDECREF

cdef extern from "Python.h":
    ctypedef struct PyMemberDef:
        Py_ssize_t offset
    ctypedef struct PyMemberDescrObject:
        PyMemberDef* d_member
    object PyType_GenericNew(object, object, object)
    bint PyObject_TypeCheck(object, object)

cdef inline Py_ssize_t slot_offset(object descriptor) except -1:
    if type(descriptor).__name__ != "member_descriptor":
        raise TypeError("message fields must be __slots__ members")
    return (<PyMemberDescrObject*>descriptor).d_member.offset

cdef inline object get_slot(object obj, Py_ssize_t offset) noexcept:
    cdef PyObject* p = (<PyObject**>((<char*><PyObject*>obj) + offset))[0]
    if p == NULL:
        return None
    return <object>p

cdef inline void set_slot(object obj, Py_ssize_t offset, object value) noexcept:
    cdef PyObject** slot = <PyObject**>((<char*><PyObject*>obj) + offset)
    cdef PyObject* old = slot[0]
    Py_INCREF(value)
    slot[0] = <PyObject*>value
    Py_XDECREF(old)

cdef inline object new_instance(object cls):
    # what object.__new__(cls) does, without the call overhead: a zeroed, GC-tracked object
    return PyType_GenericNew(cls, None, None)

cdef extern from *:
    """
    /* Spare instances of the generated slots-only message classes, by number of slots:
       a decode makes and a dropped result frees the same shapes again and again.  A
       spare is untracked, its every slot holds None (so a new instance needs no fill),
       and its type field links it to the next spare of its size (it holds no reference
       to a type).  Only instances of classes that exi_whole() accepts go here, and
       only when nothing can observe the reuse (no finalizer, no reference debugging,
       the GIL protects the lists). */
    #if !defined(Py_GIL_DISABLED) && !defined(Py_TRACE_REFS) && !defined(Py_REF_DEBUG)
    #define EXI_FREE_LIST 1
    #else
    #define EXI_FREE_LIST 0
    #endif
    #define EXI_FREE_MAX_SLOTS 128
    static PyObject *exi_free_head[EXI_FREE_MAX_SLOTS + 1];
    static int exi_free_count[EXI_FREE_MAX_SLOTS + 1];
    static inline int exi_free_cap(Py_ssize_t n) { return n <= 8 ? 512 : 16; }

    /* Spare lists, for the list-valued fields (maxOccurs > 1): a message freed by
       exi_message_dealloc whose field holds a plain list that nothing else references
       gives the list here, emptied and untracked, with its item array kept (at most
       EXI_LIST_MAX_ALLOC items); exi_new_list1 makes the next one-item list from it,
       with no allocation.  CPython's own list free list holds 80, fewer than a long
       schedule's lists. */
    #define EXI_LIST_POOL 256
    #define EXI_LIST_MAX_ALLOC 64
    static PyObject *exi_list_pool[EXI_LIST_POOL];
    static int exi_list_pool_n;
    static void exi_list_give(PyObject *o) {     /* o: a list of reference count 1 */
    #if EXI_FREE_LIST
        PyListObject *l = (PyListObject *)o;
        if (Py_IS_TYPE(o, &PyList_Type) && exi_list_pool_n < EXI_LIST_POOL
                && l->allocated >= 1 && l->allocated <= EXI_LIST_MAX_ALLOC) {
            PyObject_GC_UnTrack(o);
            Py_ssize_t n = Py_SIZE(l);
            Py_SET_SIZE(l, 0);              /* out of reach and empty before any item goes */
            while (--n >= 0) Py_XDECREF(l->ob_item[n]);
            if (exi_list_pool_n < EXI_LIST_POOL && l->allocated >= 1) {
                exi_list_pool[exi_list_pool_n++] = o;
                return;
            }
        }
    #endif
        Py_DECREF(o);
    }
    static PyObject *exi_new_list1(PyObject *v) {     /* [v] */
    #if EXI_FREE_LIST
        if (exi_list_pool_n > 0) {
            PyObject *o = exi_list_pool[--exi_list_pool_n];
            Py_INCREF(v);
            ((PyListObject *)o)->ob_item[0] = v;
            Py_SET_SIZE(o, 1);
            PyObject_GC_Track(o);
            return o;
        }
    #endif
        PyObject *o = PyList_New(1);
        if (o == NULL) return NULL;
        Py_INCREF(v);
        PyList_SET_ITEM(o, 0, v);
        return o;
    }

    /* Whether instances of tp are n slots and nothing else, allocated and freed the
       generic GC way, with no finalizer: what exi_new_message and the free list need. */
    static inline int exi_whole(PyTypeObject *tp, Py_ssize_t n) {
        return tp->tp_basicsize == (Py_ssize_t)(sizeof(PyObject) + n * sizeof(PyObject *))
            && tp->tp_alloc == PyType_GenericAlloc && (tp->tp_flags & Py_TPFLAGS_HAVE_GC)
            && tp->tp_free == PyObject_GC_Del && tp->tp_finalize == NULL
            && tp->tp_itemsize == 0 && tp->tp_dictoffset == 0 && tp->tp_weaklistoffset == 0
    #ifdef Py_TPFLAGS_MANAGED_DICT
            && !(tp->tp_flags & Py_TPFLAGS_MANAGED_DICT)
    #endif
    #ifdef Py_TPFLAGS_MANAGED_WEAKREF
            && !(tp->tp_flags & Py_TPFLAGS_MANAGED_WEAKREF)
    #endif
            ;
    }

    /* A new instance of a message class whose n fields are the slots at [offset,
       offset + n pointers), every field None.  When those slots are the whole body of
       the instance (a slots-only class, as generated), it is a spare of that size or
       allocated without the zero fill and the generic size computations of
       PyType_GenericAlloc, then tracked; any other class (a user subclass with a
       __dict__, a custom tp_alloc) goes through PyType_GenericNew. */
    static void exi_message_dealloc(PyObject *self);
    static PyObject *exi_new_message(PyObject *cls, Py_ssize_t offset, Py_ssize_t n) {
        PyTypeObject *tp = (PyTypeObject *)cls;
        PyObject *op;
    #if EXI_FREE_LIST
        /* a spare: the class has the lean dealloc (installed only on slots-only heap
           types, see exi_use_message_dealloc), its n fields are its whole body, and it
           has no finalizer: what exi_message_dealloc checks before keeping a spare */
        if (n > 0 && n <= EXI_FREE_MAX_SLOTS && exi_free_head[n] != NULL
                && tp->tp_dealloc == exi_message_dealloc && offset == (Py_ssize_t)sizeof(PyObject)
                && tp->tp_basicsize == (Py_ssize_t)(sizeof(PyObject) + n * sizeof(PyObject *))
                && tp->tp_finalize == NULL) {
            op = exi_free_head[n];
            exi_free_head[n] = (PyObject *)Py_TYPE(op);
            exi_free_count[n]--;
            Py_INCREF(tp);
            Py_SET_TYPE(op, tp);
            Py_SET_REFCNT(op, 1);
            PyObject_GC_Track(op);
            return op;
        }
    #endif
        int whole = offset == (Py_ssize_t)sizeof(PyObject) && exi_whole(tp, n);
        if (whole)
            op = (PyObject *)_PyObject_GC_New(tp);     /* takes a reference to a heap type */
        else
            op = PyType_GenericNew(tp, NULL, NULL);
        if (op == NULL) return NULL;
        PyObject **slot = (PyObject **)((char *)op + offset);
        for (Py_ssize_t i = 0; i < n; i++) slot[i] = Py_None;
        Py_SET_REFCNT(Py_None, Py_REFCNT(Py_None) + n);
        if (whole) PyObject_GC_Track(op);
        return op;
    }
    """
    object exi_new_message(object cls, Py_ssize_t offset, Py_ssize_t n)
    object exi_new_list1(object v)

cdef extern from *:
    """
    /* The first field from i on whose slot holds a value (neither unset nor None), n if
       none: a tight scan for the encoder, where most fields of a choice are None. */
    static inline Py_ssize_t exi_next_field(PyObject *obj, const Py_ssize_t *offsets,
                                            Py_ssize_t i, Py_ssize_t n) {
        const char *base = (const char *)obj;
        for (; i < n; i++) {
            PyObject *p = *(PyObject *const *)(base + offsets[i]);
            if (p != NULL && p != Py_None) break;
        }
        return i;
    }
    """
    Py_ssize_t exi_next_field(object obj, const Py_ssize_t* offsets, Py_ssize_t i, Py_ssize_t n) noexcept

cdef inline PyObject* slot_ptr(object obj, Py_ssize_t offset) noexcept:
    # the slot's value as a borrowed pointer (NULL when never set): no reference count update
    return (<PyObject**>((<char*><PyObject*>obj) + offset))[0]

cdef extern from *:
    """
    /* tp_dealloc of the generated message classes: what subtype_dealloc does for a class
       whose instances hold nothing but __slots__ (no __dict__, no weak references), in
       less work.  Their slots are the pointers between the end of the base object and the
       end of the generated class (found from Py_TYPE(self), which may be a user subclass
       whose own dealloc, subtype_dealloc, already cleared its additions and calls this). */
    static void exi_message_dealloc(PyObject *self) {
        PyTypeObject *tp = Py_TYPE(self), *gen = tp;
        PyObject **first = (PyObject **)((char *)self + sizeof(PyObject)), **slot = first;
        PyObject **end;
        Py_ssize_t n;
    #if EXI_FREE_LIST
        /* the common case first: tp has this dealloc itself (not a subclass), so it is a
           slots-only heap type whose body is its n slots (exi_use_message_dealloc checked),
           freed the generic GC way; no finalizer */
        if (tp->tp_dealloc == exi_message_dealloc && tp->tp_finalize == NULL
                && tp->tp_free == PyObject_GC_Del) {
            end = (PyObject **)((char *)self + tp->tp_basicsize);
            n = end - first;
            if (n > 0 && n <= EXI_FREE_MAX_SLOTS && exi_free_count[n] < exi_free_cap(n)) {
                PyObject_GC_UnTrack(self);
                goto spare;
            }
        }
    #endif
        while (gen->tp_dealloc != exi_message_dealloc) gen = gen->tp_base;
        if (tp->tp_finalize) {
            if (PyObject_CallFinalizerFromDealloc(self) < 0) return;   /* resurrected */
        }
        PyObject_GC_UnTrack(self);
        end = (PyObject **)((char *)self + gen->tp_basicsize);
        n = end - first;
    #if EXI_FREE_LIST
        if (tp == gen && n > 0 && n <= EXI_FREE_MAX_SLOTS && exi_free_count[n] < exi_free_cap(n)
                && tp->tp_finalize == NULL && tp->tp_free == PyObject_GC_Del) {
          spare:;
            /* keep it as a spare: every slot back to None (one count update for the
               Nones put back), then on the list of its size */
            Py_ssize_t filled = 0;
            for (; slot < end; slot++) {
                PyObject *o = *slot;
                if (o != Py_None) {
                    *slot = Py_None;
                    filled++;
                    if (o != NULL && Py_REFCNT(o) == 1 && PyList_CheckExact(o))
                        exi_list_give(o);       /* a field's own list: kept as a spare */
                    else
                        Py_XDECREF(o);      /* may free children (onto the lists too) */
                }
            }
            Py_SET_REFCNT(Py_None, Py_REFCNT(Py_None) + filled);
            if (exi_free_count[n] < exi_free_cap(n)) {
                Py_SET_TYPE(self, (PyTypeObject *)exi_free_head[n]);
                exi_free_head[n] = self;
                exi_free_count[n]++;
                Py_DECREF(tp);
                return;
            }
            Py_SET_REFCNT(Py_None, Py_REFCNT(Py_None) - n);     /* the children filled it */
            tp->tp_free(self);
            Py_DECREF(tp);
            return;
        }
    #endif
        Py_ssize_t nones = 0;       /* most slots hold None: one count update for them all */
        for (; slot < end; slot++) {
            if (*slot == Py_None) nones++;
            else Py_CLEAR(*slot);
        }
        Py_SET_REFCNT(Py_None, Py_REFCNT(Py_None) - nones);
        tp->tp_free(self);
        Py_DECREF(tp);
    }
    /* Install it on a heap type whose instances hold only slots: 1 if done. */
    static int exi_use_message_dealloc(PyObject *cls) {
        PyTypeObject *tp = (PyTypeObject *)cls;
        if (!PyType_Check(cls) || !(tp->tp_flags & Py_TPFLAGS_HEAPTYPE) || !PyType_IS_GC(tp)
                || tp->tp_dictoffset != 0 || tp->tp_weaklistoffset != 0 || tp->tp_itemsize != 0
                || tp->tp_base == NULL || tp->tp_base->tp_basicsize != sizeof(PyObject)
                || tp->tp_base->tp_dealloc == exi_message_dealloc)
            return 0;
        tp->tp_dealloc = exi_message_dealloc;
        return 1;
    }
    """
    int exi_use_message_dealloc(object cls) noexcept
