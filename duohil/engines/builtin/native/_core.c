/* duohil.engines.builtin.native._core: the CPython face of the native core.
 *
 * Hand-written against the CPython C API (no Cython, no cffi: nothing to install but gcc and
 * Python.h). What lives here:
 *   - Event and Scheduler: the builtin engine's scheduler (scheduler.py is its Python face and
 *     event log): the event heap (evheap.c, heapq's sift algorithm on (time_ps, seq)), the time
 *     loop and the slice driver, the one implementation (the Python copy was deleted once the
 *     two were proven equal; tests/test_native_scheduler.py states the behaviour).
 *     Devices and CPUs are still Python objects: the loop calls them.
 *   - bind_unicorn(): resolve the unicorn C API on the library the `unicorn` package loaded
 *     (ucapi.c) and refuse a version other than the headers'.
 *   - emu_start() and two measuring helpers for `make bench`.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <stdint.h>
#include <string.h>

#include "cortexm.h"
#include "riscv.h"
#include "clint.h"
#include "plic.h"
#include "evheap.h"
#include "nvic.h"
#include "ucapi.h"
#include "bus.h"              /* [cbus] */
#include "vtlb.h"             /* [vtlb] */
#include "ports.h"

#define NEVER INT64_MAX      /* "no deferred event": scheduler.py's float("inf") */

static int uc_bound = 0;

/* -- helpers ------------------------------------------------------------------------------------ */

/* int(o) as a 64-bit count of picoseconds (or a sequence number). */
static int as_i64(PyObject *o, int64_t *out)
{
    long long v;
    if (PyLong_Check(o)) {
        v = PyLong_AsLongLong(o);
    } else {
        PyObject *i = PyNumber_Long(o);
        if (!i)
            return -1;
        v = PyLong_AsLongLong(i);
        Py_DECREF(i);
    }
    if (v == -1 && PyErr_Occurred()) {
        if (PyErr_ExceptionMatches(PyExc_OverflowError)) {
            PyErr_Clear();
            PyErr_SetString(PyExc_OverflowError,
                            "time or sequence number beyond 2**63-1 ps (106 days of virtual time)");
        }
        return -1;
    }
    *out = (int64_t)v;
    return 0;
}

/* -- Event ------------------------------------------------------------------------------------------ */

typedef struct {
    PyObject_HEAD
    int64_t time;
    int64_t seq;
    PyObject *fn;
    PyObject *args;      /* a tuple */
    PyObject *name;
    char cancelled;
} EventObject;

static PyTypeObject EventType;

static EventObject *event_new(int64_t t, int64_t seq, PyObject *fn, PyObject *args, PyObject *name)
{
    EventObject *ev = PyObject_GC_New(EventObject, &EventType);
    if (!ev)
        return NULL;
    ev->time = t;
    ev->seq = seq;
    Py_INCREF(fn);
    ev->fn = fn;
    Py_INCREF(args);
    ev->args = args;
    Py_INCREF(name);
    ev->name = name;
    ev->cancelled = 0;
    PyObject_GC_Track(ev);
    return ev;
}

static int event_traverse(EventObject *ev, visitproc visit, void *arg)
{
    Py_VISIT(ev->fn);
    Py_VISIT(ev->args);
    Py_VISIT(ev->name);
    return 0;
}

static int event_clear(EventObject *ev)
{
    Py_CLEAR(ev->fn);
    Py_CLEAR(ev->args);
    Py_CLEAR(ev->name);
    return 0;
}

static void event_dealloc(EventObject *ev)
{
    PyObject_GC_UnTrack(ev);
    event_clear(ev);
    Py_TYPE(ev)->tp_free((PyObject *)ev);
}

static PyObject *event_cancel(EventObject *ev, PyObject *Py_UNUSED(ignored))
{
    ev->cancelled = 1;
    Py_RETURN_NONE;
}

static PyObject *event_repr(EventObject *ev)
{
    int has_name = PyObject_IsTrue(ev->name);
    if (has_name < 0)
        return NULL;
    if (has_name)
        return PyUnicode_FromFormat("Event(%S @ %lld ps)", ev->name, (long long)ev->time);
    PyObject *fname = PyObject_GetAttrString(ev->fn, "__name__");
    if (!fname)
        return NULL;
    PyObject *r = PyUnicode_FromFormat("Event(%S @ %lld ps)", fname, (long long)ev->time);
    Py_DECREF(fname);
    return r;
}

static PyObject *event_richcompare(PyObject *a, PyObject *b, int op)
{
    if (op != Py_LT || !PyObject_TypeCheck(a, &EventType) || !PyObject_TypeCheck(b, &EventType))
        Py_RETURN_NOTIMPLEMENTED;
    EventObject *x = (EventObject *)a, *y = (EventObject *)b;
    return PyBool_FromLong(x->time < y->time || (x->time == y->time && x->seq < y->seq));
}

static PyObject *event_get_args(EventObject *ev, void *Py_UNUSED(c))
{
    Py_INCREF(ev->args);
    return ev->args;
}

static int event_set_args(EventObject *ev, PyObject *v, void *Py_UNUSED(c))
{
    if (!v || !PyTuple_Check(v)) {
        PyErr_SetString(PyExc_TypeError, "Event.args must be a tuple");
        return -1;
    }
    Py_INCREF(v);
    Py_SETREF(ev->args, v);
    return 0;
}

static PyMemberDef event_members[] = {
    {"time", T_LONGLONG, offsetof(EventObject, time), READONLY, "virtual time, ps"},
    {"seq", T_LONGLONG, offsetof(EventObject, seq), READONLY, "scheduling order"},
    {"fn", T_OBJECT, offsetof(EventObject, fn), READONLY, NULL},
    {"name", T_OBJECT, offsetof(EventObject, name), READONLY, NULL},
    {"cancelled", T_BOOL, offsetof(EventObject, cancelled), 0, NULL},
    {NULL},
};

static PyGetSetDef event_getset[] = {
    {"args", (getter)event_get_args, (setter)event_set_args, NULL, NULL},
    {NULL},
};

static PyMethodDef event_methods[] = {
    {"cancel", (PyCFunction)event_cancel, METH_NOARGS, "Do not fire this event."},
    {NULL},
};

static PyTypeObject EventType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "duohil.engines.builtin.native._core.Event",
    .tp_basicsize = sizeof(EventObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "A scheduled call fn(*args) at time (ps); made by Scheduler.at/after/at_seq.",
    .tp_dealloc = (destructor)event_dealloc,
    .tp_traverse = (traverseproc)event_traverse,
    .tp_clear = (inquiry)event_clear,
    .tp_repr = (reprfunc)event_repr,
    .tp_richcompare = event_richcompare,
    .tp_members = event_members,
    .tp_getset = event_getset,
    .tp_methods = event_methods,
};

/* -- Scheduler ------------------------------------------------------------------------------------ */

typedef struct {
    PyObject_HEAD
    int64_t quantum;
    int64_t now;
    int64_t seq;
    int64_t steps;
    int64_t lazy_min;     /* smallest live t_lb of the deferred list, NEVER when none */
    size_t compact_at;    /* heap length past which `at` drops cancelled events (scheduler.py) */
    dh_heap heap;         /* items: owned EventObject references */
    PyObject *cpus;       /* list */
    PyObject *log;        /* list of (t_ps, kind, details) */
    PyObject *listeners;  /* list */
    PyObject *parked;     /* list */
    PyObject *lazy;       /* list of [t_lb, fn, alive] */
} SchedObject;

static PyObject *str_next_deadline, *str_advance_to, *str_settle, *str_parked, *str_unpark, *str_t,
    *str_empty;

static PyObject *sched_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"quantum_ps", NULL};
    PyObject *q = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O:Scheduler", kwlist, &q))
        return NULL;
    int64_t quantum = 10 * 1000 * 1000;    /* DEFAULT_QUANTUM_PS; the Python wrapper passes it */
    if (q && as_i64(q, &quantum) < 0)
        return NULL;
    if (quantum <= 0)
        return PyErr_Format(PyExc_ValueError,
                            "quantum must be a positive number of picoseconds, got %lld",
                            (long long)quantum);
    SchedObject *s = (SchedObject *)type->tp_alloc(type, 0);
    if (!s)
        return NULL;
    s->quantum = quantum;
    s->lazy_min = NEVER;
    s->compact_at = 1024;
    s->cpus = PyList_New(0);
    s->log = PyList_New(0);
    s->listeners = PyList_New(0);
    s->parked = PyList_New(0);
    s->lazy = PyList_New(0);
    if (!s->cpus || !s->log || !s->listeners || !s->parked || !s->lazy) {
        Py_DECREF(s);
        return NULL;
    }
    return (PyObject *)s;
}

static int sched_traverse(SchedObject *s, visitproc visit, void *arg)
{
    for (size_t i = 0; i < s->heap.n; i++)
        Py_VISIT((PyObject *)s->heap.v[i].item);
    Py_VISIT(s->cpus);
    Py_VISIT(s->log);
    Py_VISIT(s->listeners);
    Py_VISIT(s->parked);
    Py_VISIT(s->lazy);
    return 0;
}

static int sched_clear(SchedObject *s)
{
    while (s->heap.n) {
        dh_entry e = dh_pop(&s->heap);
        Py_DECREF((PyObject *)e.item);
    }
    Py_CLEAR(s->cpus);
    Py_CLEAR(s->log);
    Py_CLEAR(s->listeners);
    Py_CLEAR(s->parked);
    Py_CLEAR(s->lazy);
    return 0;
}

static void sched_dealloc(SchedObject *s)
{
    PyObject_GC_UnTrack(s);
    sched_clear(s);
    dh_free(&s->heap);
    Py_TYPE(s)->tp_free((PyObject *)s);
}

static int push_event(SchedObject *s, EventObject *ev)
{
    if (dh_push(&s->heap, ev->time, ev->seq, ev) < 0) {
        PyErr_NoMemory();
        return -1;
    }
    Py_INCREF(ev);
    return 0;
}

/* Scheduler._compact: drop every cancelled event, keep the live ones in array order, heapify. A
 * cancelled event re-armed far ahead (a CLINT compare, once per tick) would never reach the top. */
static void compact(SchedObject *s)
{
    size_t live = 0;
    for (size_t i = 0; i < s->heap.n; i++) {
        dh_entry e = s->heap.v[i];
        if (((EventObject *)e.item)->cancelled)
            Py_DECREF((PyObject *)e.item);
        else
            s->heap.v[live++] = e;
    }
    s->heap.n = live;
    dh_heapify(&s->heap);
    s->compact_at = 2 * live > 1024 ? 2 * live : 1024;
}

/* Drop cancelled events from the top (before reading the next event's time). */
static void drop_cancelled(SchedObject *s)
{
    while (s->heap.n && ((EventObject *)s->heap.v[0].item)->cancelled) {
        dh_entry e = dh_pop(&s->heap);
        Py_DECREF((PyObject *)e.item);
    }
}

/* Parse (t, [seq,] fn, *args, name="") of at/at_seq. */
static PyObject *schedule(SchedObject *s, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                          int mode)   /* 0: at, 1: after, 2: at_seq */
{
    Py_ssize_t nfixed = mode == 2 ? 3 : 2;
    static const char *names[] = {"at", "after", "at_seq"};
    if (nargs < nfixed)
        return PyErr_Format(PyExc_TypeError, "%s() takes at least %zd positional arguments",
                            names[mode], nfixed);
    PyObject *name = str_empty;
    if (kwnames) {
        Py_ssize_t nk = PyTuple_GET_SIZE(kwnames);
        for (Py_ssize_t i = 0; i < nk; i++) {
            PyObject *k = PyTuple_GET_ITEM(kwnames, i);
            if (PyUnicode_CompareWithASCIIString(k, "name") != 0)
                return PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument %R",
                                    names[mode], k);
            name = args[nargs + i];
        }
    }
    int64_t t, seq;
    if (as_i64(args[0], &t) < 0)
        return NULL;
    if (mode == 0) {
        if (t < s->now)
            t = s->now;
        seq = ++s->seq;
    } else if (mode == 1) {
        if (t < 0)
            t = 0;
        t += s->now;
        seq = ++s->seq;
    } else if (as_i64(args[1], &seq) < 0) {
        return NULL;
    }
    PyObject *fn = args[nfixed - 1];
    PyObject *fargs = PyTuple_New(nargs - nfixed);
    if (!fargs)
        return NULL;
    for (Py_ssize_t i = nfixed; i < nargs; i++) {
        Py_INCREF(args[i]);
        PyTuple_SET_ITEM(fargs, i - nfixed, args[i]);
    }
    EventObject *ev = event_new(t, seq, fn, fargs, name);
    Py_DECREF(fargs);
    if (!ev)
        return NULL;
    if (push_event(s, ev) < 0) {
        Py_DECREF(ev);
        return NULL;
    }
    if (mode != 2 && s->heap.n > s->compact_at)     /* at/after compact, at_seq does not */
        compact(s);
    return (PyObject *)ev;
}

static PyObject *sched_at(SchedObject *s, PyObject *const *args, Py_ssize_t nargs, PyObject *kw)
{
    return schedule(s, args, nargs, kw, 0);
}

static PyObject *sched_after(SchedObject *s, PyObject *const *args, Py_ssize_t nargs, PyObject *kw)
{
    return schedule(s, args, nargs, kw, 1);
}

static PyObject *sched_at_seq(SchedObject *s, PyObject *const *args, Py_ssize_t nargs, PyObject *kw)
{
    return schedule(s, args, nargs, kw, 2);
}

static PyObject *sched_reserve_seq(SchedObject *s, PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromLongLong(++s->seq);
}

/* -- deferred events (Scheduler.defer/cancel_deferred), kept as Python lists: rare and cheap -- */

static int lazy_item(PyObject *it, int64_t *t_lb, int *alive)
{
    if (!PyList_Check(it) || PyList_GET_SIZE(it) != 3) {
        PyErr_SetString(PyExc_TypeError, "deferred entries are [t_lb, fn, alive] lists");
        return -1;
    }
    if (as_i64(PyList_GET_ITEM(it, 0), t_lb) < 0)
        return -1;
    int a = PyObject_IsTrue(PyList_GET_ITEM(it, 2));
    if (a < 0)
        return -1;
    *alive = a;
    return 0;
}

/* Keep the live entries with t_lb > upto (all live ones for upto = NEVER + 1 semantics via
 * keep_all); put the due ones in *due when due != NULL. Sets s->lazy and s->lazy_min. */
static int lazy_split(SchedObject *s, int64_t upto, int keep_all, PyObject *due)
{
    PyObject *keep = PyList_New(0);
    if (!keep)
        return -1;
    int64_t mn = NEVER;
    PyObject *old = s->lazy;            /* held: nothing below may free it under us */
    Py_INCREF(old);
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(old); i++) {
        PyObject *it = PyList_GET_ITEM(old, i);
        int64_t t_lb;
        int alive;
        if (lazy_item(it, &t_lb, &alive) < 0)
            goto fail;
        if (!alive)
            continue;
        if (!keep_all && t_lb <= upto) {
            if (due && PyList_Append(due, it) < 0)
                goto fail;
            continue;
        }
        if (PyList_Append(keep, it) < 0)
            goto fail;
        if (t_lb < mn)
            mn = t_lb;
    }
    Py_SETREF(s->lazy, keep);
    s->lazy_min = mn;
    Py_DECREF(old);
    return 0;
fail:
    Py_DECREF(old);
    Py_DECREF(keep);
    return -1;
}

static PyObject *sched_defer(SchedObject *s, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2)
        return PyErr_Format(PyExc_TypeError, "defer() takes 2 arguments (t_lb, fn)");
    int64_t t_lb;
    if (as_i64(args[0], &t_lb) < 0)
        return NULL;
    PyObject *item = PyList_New(3);
    if (!item)
        return NULL;
    Py_INCREF(args[0]);
    PyList_SET_ITEM(item, 0, args[0]);
    Py_INCREF(args[1]);
    PyList_SET_ITEM(item, 1, args[1]);
    Py_INCREF(Py_True);
    PyList_SET_ITEM(item, 2, Py_True);
    if (PyList_GET_SIZE(s->lazy) >= 64 && lazy_split(s, 0, 1, NULL) < 0) {  /* drop cancelled */
        Py_DECREF(item);
        return NULL;
    }
    if (PyList_Append(s->lazy, item) < 0) {
        Py_DECREF(item);
        return NULL;
    }
    if (t_lb < s->lazy_min)
        s->lazy_min = t_lb;
    return item;
}

static PyObject *sched_cancel_deferred(SchedObject *Py_UNUSED(s), PyObject *item)
{
    PyObject *two = PyLong_FromLong(2);
    if (!two)
        return NULL;
    int rc = PyObject_SetItem(item, two, Py_False);     /* item[2] = False */
    Py_DECREF(two);
    if (rc < 0)
        return NULL;
    Py_RETURN_NONE;
}

static int materialize(SchedObject *s, int64_t upto)
{
    PyObject *due = PyList_New(0);
    if (!due)
        return -1;
    if (lazy_split(s, upto, 0, due) < 0) {
        Py_DECREF(due);
        return -1;
    }
    Py_ssize_t n = PyList_GET_SIZE(due);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *it = PyList_GET_ITEM(due, i);
        Py_INCREF(Py_False);
        if (PyList_SetItem(it, 2, Py_False) < 0)
            goto fail;
        PyObject *r = PyObject_CallNoArgs(PyList_GET_ITEM(it, 1));
        if (!r)
            goto fail;
        Py_DECREF(r);
    }
    Py_DECREF(due);
    return 0;
fail:
    Py_DECREF(due);
    return -1;
}

/* next_event_time() as an int64 (NEVER: none); -1 on error with an exception set. */
static int next_event(SchedObject *s, int64_t *out)
{
    drop_cancelled(s);
    if (s->lazy_min != NEVER) {
        int64_t top = s->heap.n ? s->heap.v[0].t : NEVER;
        if (s->lazy_min <= top) {
            if (materialize(s, top) < 0)
                return -1;
            drop_cancelled(s);
        }
    }
    *out = s->heap.n ? s->heap.v[0].t : NEVER;
    return 0;
}

static PyObject *sched_next_event_time(SchedObject *s, PyObject *Py_UNUSED(ignored))
{
    int64_t t;
    if (next_event(s, &t) < 0)
        return NULL;
    if (!s->heap.n)
        Py_RETURN_NONE;
    return PyLong_FromLongLong(t);
}


static PyObject *sched_park(SchedObject *s, PyObject *cpu)
{
    if (PyList_Append(s->parked, cpu) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *sched_on_event(SchedObject *s, PyObject *listener)
{
    if (PyList_Append(s->listeners, listener) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *sched_add_cpu(SchedObject *s, PyObject *cpu)
{
    if (PyList_Append(s->cpus, cpu) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static int get_truth(PyObject *o, PyObject *name);     /* [cpustate] */

/* fire_due: fire every event at <= upto in (time, seq) order. */
static int fire_due(SchedObject *s, int64_t upto)
{
    for (;;) {
        if (s->lazy_min <= upto && materialize(s, upto) < 0)
            return -1;
        if (!s->heap.n || s->heap.v[0].t > upto)
            return 0;
        EventObject *ev = (EventObject *)dh_pop(&s->heap).item;     /* our reference */
        if (ev->cancelled) {
            Py_DECREF(ev);
            continue;
        }
        if (ev->time > s->now)
            s->now = ev->time;
        PyObject *r = PyObject_Call(ev->fn, ev->args, NULL);
        if (!r) {
            Py_DECREF(ev);
            return -1;
        }
        Py_DECREF(r);
        if (PyList_GET_SIZE(s->parked)) {
            for (Py_ssize_t i = 0; i < PyList_GET_SIZE(s->parked); i++) {
                PyObject *cpu = PyList_GET_ITEM(s->parked, i);
                Py_INCREF(cpu);
                int is = get_truth(cpu, str_parked);
                if (is > 0) {
                    PyObject *u = PyObject_CallMethodNoArgs(cpu, str_unpark);
                    Py_XDECREF(u);
                    if (!u)
                        is = -1;
                }
                Py_DECREF(cpu);
                if (is < 0) {
                    Py_DECREF(ev);
                    return -1;
                }
            }
            if (PyList_SetSlice(s->parked, 0, PY_SSIZE_T_MAX, NULL) < 0) {
                Py_DECREF(ev);
                return -1;
            }
        }
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(s->listeners); i++) {
            PyObject *l = PyList_GET_ITEM(s->listeners, i);
            Py_INCREF(l);
            PyObject *r2 = PyObject_CallOneArg(l, (PyObject *)ev);
            Py_DECREF(l);
            if (!r2) {
                Py_DECREF(ev);
                return -1;
            }
            Py_DECREF(r2);
        }
        Py_DECREF(ev);
    }
}


/* -- the slice driver: CpuCore.next_deadline / advance_to / settle (cpu.py) in C ----------------------
 *
 * The one implementation of the slice driver (cpu.py's methods call cpu_next_deadline,
 * cpu_advance_to, cpu_settle below; the order is described there). The C scheduler calls these
 * directly for a CPU whose class kept CpuCore's own methods (register_cpu_class), and the
 * Python methods of a CPU that overrides them. What stays Python is what the architecture
 * provides (take_interrupts, interrupt_pending, _run_slice, unpark) and the machine's record.
 */

#define PS_PER_S 1000000000000LL

/* -- [vtlb] the CPUs' TLB fill (vtlb.c): Vtlb(uch, page_size, arm_m, uc) ---------------------------
 *
 * One per core, made by cpu.py once the Uc exists (it is about
 * unicorn, not a model). It keeps the Python Uc to know whether the engine is still open when it
 * goes (an open engine gets its hook removed and unicorn's own fill back). The M7's slice asks it
 * whether a refused fetch (the default map's or the MPU's XN) ended the slice
 * (CortexM.bind_vtlb). */

static int engine_open(PyObject *uc_obj);
static int need_uc(void);

/* -- [gilrun] the engine this thread runs through our emu_start, the GIL held -------------------
 *
 * Every emu_start of ours (the slices, emu_start(), the bench loops) runs with the GIL held, so
 * the C callbacks of that engine (the MMIO bus, the M7's interrupt hook) need no
 * PyGILState_Ensure/Release (~13 ns of a ~90 ns native MMIO access). An engine run any other way
 * (the unicorn binding's emu_start, a ctypes call that released the GIL) still takes the GIL in
 * its callbacks. Per thread: a thread running one engine cannot interleave another thread's
 * nesting; nested runs save and restore it. */
static __thread uc_engine *gil_uc;

static uc_err dh_emu_start(uc_engine *uc, uint64_t begin, uint64_t until, uint64_t timeout,
                           size_t count)
{
    uc_engine *outer = gil_uc;
    gil_uc = uc;
    uc_err err = UC.emu_start(uc, begin, until, timeout, count);
    gil_uc = outer;
    return err;
}

/* Take the GIL for a callback of `uc` unless this thread runs it through dh_emu_start (then it
 * holds the GIL already); gil_leave undoes what gil_enter did. */
static inline int gil_enter(uc_engine *uc, PyGILState_STATE *g)
{
    if (uc == gil_uc)
        return 0;
    *g = PyGILState_Ensure();
    return 1;
}

static inline void gil_leave(int took, PyGILState_STATE g)
{
    if (took)
        PyGILState_Release(g);
}

typedef struct {
    PyObject_HEAD
    dh_vtlb t;
    PyObject *uc_obj;
    int installed;
} VtlbObject;

static PyTypeObject VtlbType;

static PyObject *vt_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    PyObject *h, *uc_obj;
    unsigned int page;
    int arm_m;
    static char *kwlist[] = {"uch", "page_size", "arm_m", "uc", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OIpO:Vtlb", kwlist, &h, &page, &arm_m, &uc_obj))
        return NULL;
    if (need_uc() < 0)
        return NULL;
    void *uch = PyLong_AsVoidPtr(h);
    if (!uch)
        return PyErr_Occurred() ? NULL : PyErr_Format(PyExc_ValueError, "Vtlb: null uc handle");
    VtlbObject *v = (VtlbObject *)type->tp_alloc(type, 0);
    if (!v)
        return NULL;
    uc_err err = dh_vtlb_install(&v->t, (uc_engine *)uch, page, arm_m);
    if (err != UC_ERR_OK) {
        Py_DECREF(v);
        return PyErr_Format(PyExc_RuntimeError, "Vtlb: page size %u: unicorn: %s", page, UC.strerror(err));
    }
    v->installed = 1;
    Py_INCREF(uc_obj);
    v->uc_obj = uc_obj;
    return (PyObject *)v;
}

static int vt_traverse(VtlbObject *v, visitproc visit, void *arg)
{
    Py_VISIT(v->uc_obj);
    return 0;
}

static int vt_clear(VtlbObject *v)
{
    /* an open engine may outlive us: never leave it a hook into freed memory */
    if (v->installed && v->uc_obj && engine_open(v->uc_obj)) {
        UC.hook_del(v->t.uc, v->t.hook);
        UC.ctl(v->t.uc, UC_CTL_WRITE(UC_CTL_TLB_TYPE, 1), UC_TLB_CPU);
        UC.ctl(v->t.uc, UC_CTL_WRITE(UC_CTL_TLB_FLUSH, 0));
    }
    v->installed = 0;
    Py_CLEAR(v->uc_obj);
    return 0;
}

static void vt_dealloc(VtlbObject *v)
{
    PyObject_GC_UnTrack(v);
    vt_clear(v);
    dh_vtlb_free(&v->t);
    Py_TYPE(v)->tp_free((PyObject *)v);
}

static PyObject *vt_stats(VtlbObject *v, PyObject *Py_UNUSED(ignored))
{
    return Py_BuildValue("{sLsLsLsLsL}", "fills", (long long)v->t.fills, "exec_pages",
                         (long long)v->t.exec_pages, "flushes", (long long)v->t.flushes, "xn_sets",
                         (long long)v->t.xn_sets, "code_dropped", (long long)v->t.code_dropped);
}

/* set_xn(ranges): the byte ranges [start, end) the MPU makes Execute Never, page-aligned */
static PyObject *vt_set_xn(VtlbObject *v, PyObject *ranges)
{
    if (!v->installed)
        return PyErr_Format(PyExc_RuntimeError, "Vtlb.set_xn: the fill is no longer installed");
    PyObject *seq = PySequence_Fast(ranges, "set_xn needs a sequence of (start, end) ranges");
    if (!seq)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    uint32_t (*runs)[2] = PyMem_Malloc((size_t)(n ? n : 1) * sizeof *runs);
    if (!runs) {
        Py_DECREF(seq);
        return PyErr_NoMemory();
    }
    unsigned bits = v->t.page_bits;
    uint64_t mask = ((uint64_t)1 << bits) - 1;
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned long long lo, hi;
        PyObject *r = PySequence_Fast_GET_ITEM(seq, i);
        if (!PyTuple_Check(r)) {
            PyErr_Format(PyExc_TypeError, "set_xn: a range is a (start, end) tuple, not %.100s",
                         Py_TYPE(r)->tp_name);
            goto fail;
        }
        if (!PyArg_ParseTuple(r, "KK:set_xn", &lo, &hi))
            goto fail;
        if (lo >= hi || hi > 1ull << 32 || (lo & mask) || (hi & mask)) {
            PyErr_Format(PyExc_ValueError, "set_xn: [%#llx, %#llx) is not a run of %u-byte pages",
                         lo, hi, 1u << bits);
            goto fail;
        }
        runs[i][0] = (uint32_t)(lo >> bits);
        runs[i][1] = (uint32_t)(hi >> bits);
    }
    uc_err err = dh_vtlb_set_xn(&v->t, (const uint32_t (*)[2])runs, (size_t)n);
    if (err != UC_ERR_OK) {
        if (err == UC_ERR_NOMEM)
            PyErr_NoMemory();
        else
            PyErr_SetString(PyExc_ValueError, "set_xn: ranges must be sorted and not overlap");
        goto fail;
    }
    PyMem_Free(runs);
    Py_DECREF(seq);
    Py_RETURN_NONE;
fail:
    PyMem_Free(runs);
    Py_DECREF(seq);
    return NULL;
}

/* mem_protect(address, size, perms): uc_mem_protect with unicorn's own fetch lookups kept from
 * marking or refusing pages (dh_vtlb_protect) */
static PyObject *vt_mem_protect(VtlbObject *v, PyObject *args)
{
    unsigned long long address, size;
    unsigned int perms;
    if (!PyArg_ParseTuple(args, "KKI:mem_protect", &address, &size, &perms))
        return NULL;
    if (!v->installed)
        return PyErr_Format(PyExc_RuntimeError, "Vtlb.mem_protect: the fill is no longer installed");
    uc_err err = dh_vtlb_protect(&v->t, address, size, perms);
    if (err != UC_ERR_OK)
        return PyErr_Format(PyExc_RuntimeError, "mem_protect(%#llx, %#llx, %u): unicorn: %s", address,
                            size, perms, UC.strerror(err));
    Py_RETURN_NONE;
}

/* marked(address): a fetch has marked the page of `address` (its data fills get X) */
static PyObject *vt_marked(VtlbObject *v, PyObject *arg)
{
    unsigned long long a = PyLong_AsUnsignedLongLong(arg);
    if (a == (unsigned long long)-1 && PyErr_Occurred())
        return NULL;
    if (a >= 1ull << 32)
        return PyErr_Format(PyExc_ValueError, "marked: %#llx is not a 32-bit address", a);
    return PyBool_FromLong(dh_vtlb_marked(&v->t, a >> v->t.page_bits));
}

/* xn(): the ranges set_xn was given, as [start, end) byte addresses */
static PyObject *vt_xn(VtlbObject *v, PyObject *Py_UNUSED(ignored))
{
    PyObject *l = PyList_New((Py_ssize_t)v->t.n_xn_runs);
    for (size_t i = 0; l && i < v->t.n_xn_runs; i++) {
        PyObject *r = Py_BuildValue("(KK)", (unsigned long long)v->t.xn_runs[i][0] << v->t.page_bits,
                                    (unsigned long long)v->t.xn_runs[i][1] << v->t.page_bits);
        if (!r)
            Py_CLEAR(l);
        else
            PyList_SET_ITEM(l, (Py_ssize_t)i, r);
    }
    return l;
}

/* (pc) of a fetch refused since the last call, else None; clears it */
static PyObject *vt_take_xn(VtlbObject *v, PyObject *Py_UNUSED(ignored))
{
    if (!v->t.xn_pending)
        Py_RETURN_NONE;
    v->t.xn_pending = 0;
    return PyLong_FromUnsignedLong(v->t.xn_pc);
}

static PyMethodDef vt_methods[] = {
    {"stats", (PyCFunction)vt_stats, METH_NOARGS,
     "{fills, exec_pages, flushes, xn_sets, code_dropped} so far."},
    {"take_xn", (PyCFunction)vt_take_xn, METH_NOARGS,
     "The PC of a fetch refused (Execute Never: the ARMv7-M default map or set_xn's pages) since the "
     "last call, else None; clears it."},
    {"set_xn", (PyCFunction)vt_set_xn, METH_O,
     "set_xn(ranges): the page-aligned byte ranges [start, end) the MPU makes Execute Never (sorted, "
     "not overlapping; they replace the previous ones). A fetch there is refused; code translated "
     "there is dropped; the TLB is flushed."},
    {"xn", (PyCFunction)vt_xn, METH_NOARGS, "The ranges of the last set_xn."},
    {"mem_protect", (PyCFunction)vt_mem_protect, METH_VARARGS,
     "mem_protect(address, size, perms): uc_mem_protect, with the fetch lookups unicorn makes "
     "while splitting a region neither marking nor refusing a page (native/vtlb.h); flushes the TLB."},
    {"marked", (PyCFunction)vt_marked, METH_O,
     "marked(address): True when a fetch has marked that page (its data fills get execute rights)."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject VtlbType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "duohil.engines.builtin.native._core.Vtlb",
    .tp_basicsize = sizeof(VtlbObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = (traverseproc)vt_traverse,
    .tp_clear = (inquiry)vt_clear,
    .tp_dealloc = (destructor)vt_dealloc,
    .tp_doc = "Vtlb(uch, page_size, arm_m, uc): the core's TLB filled by duohil (native/vtlb.h).",
    .tp_new = vt_new,
    .tp_methods = vt_methods,
};

static int add_vtlb_type(PyObject *m)
{
    if (PyType_Ready(&VtlbType) < 0)
        return -1;
    Py_INCREF(&VtlbType);
    if (PyModule_AddObject(m, "Vtlb", (PyObject *)&VtlbType) < 0) {
        Py_DECREF(&VtlbType);
        return -1;
    }
    return 0;
}

/* -- [cpustate] the CPU's time state as a C struct ----------------------------------------------------
 *
 * CpuCore (cpu.py) derives from _core.CpuState: the fields the slice driver, the slices and the
 * units' machine_now read at every step are C fields here and attributes of the same names for
 * Python (getset descriptors: an int, a bool, or an int-or-None; `machine` a plain member). The
 * C helpers get_truth, get_i64 and set_truth read and write the field itself when the object is a
 * CpuState and the name is one of CS_FIELDS (interned: a pointer compare) and go through the
 * attribute otherwise (a test's duck-typed CPU, any other object); the slice driver (c_advance_to
 * and friends) takes a CpuState only. Before: ~40 attribute lookups and int conversions per
 * slice, ~10 % of a nominal run in CPython's dict and type lookups. */

typedef struct {
    int64_t v;
    char set;                     /* 0: None */
} dh_opt64;

typedef struct {
    PyObject_HEAD
    int64_t hz, cycles, slice_start_ps, slices, instructions, poll_count, poll_writes;
    dh_opt64 stall_until, park_until, pending_hz, poll_addr;
    char sleeping, halted, parked, executing;
    PyObject *machine;
    /* what the slice driver calls at every step, as the instance holds them: the values of the
     * instance attributes take_interrupts, interrupt_pending and _run_slice (cortexm.py and
     * riscv.py set them to their C units' bound methods), mirrored by cs_setattro so the driver
     * calls them without an attribute lookup; NULL: not set on the instance, looked up */
    PyObject *m_take, *m_pending, *m_run;
} CpuStateObject;

static PyTypeObject CpuStateType;

/* [machstate] the machine's cpu and scheduler as members (see machine_now below) */
typedef struct {
    PyObject_HEAD
    PyObject *cpu, *scheduler;
} MachineStateObject;

static PyTypeObject MachineStateType;

enum { CS_I64, CS_OPT, CS_BOOL, CS_OBJ, CS_VEC };

typedef struct {
    const char *name;
    int kind;
    size_t off;
    PyObject *key;                /* the interned name */
    int len;                      /* CS_VEC: how many words */
    int tuple;                    /* CS_VEC: Python sees a tuple (else a list) */
} cs_field;

/* CS_VEC: a fixed number of 32-bit words or None, held in the struct (no list, no ints made
 * unless Python asks): `set` 0 means None. */
#define CS_VEC_T(n) struct { uint32_t set; uint32_t v[n]; }

static cs_field CS_FIELDS[] = {
    {"hz", CS_I64, offsetof(CpuStateObject, hz), NULL},
    {"cycles", CS_I64, offsetof(CpuStateObject, cycles), NULL},
    {"slice_start_ps", CS_I64, offsetof(CpuStateObject, slice_start_ps), NULL},
    {"slices", CS_I64, offsetof(CpuStateObject, slices), NULL},
    {"instructions", CS_I64, offsetof(CpuStateObject, instructions), NULL},
    {"_poll_count", CS_I64, offsetof(CpuStateObject, poll_count), NULL},
    {"_poll_writes", CS_I64, offsetof(CpuStateObject, poll_writes), NULL},
    {"stall_until", CS_OPT, offsetof(CpuStateObject, stall_until), NULL},
    {"park_until", CS_OPT, offsetof(CpuStateObject, park_until), NULL},
    {"_pending_hz", CS_OPT, offsetof(CpuStateObject, pending_hz), NULL},
    {"_poll_addr", CS_OPT, offsetof(CpuStateObject, poll_addr), NULL},
    {"sleeping", CS_BOOL, offsetof(CpuStateObject, sleeping), NULL},
    {"halted", CS_BOOL, offsetof(CpuStateObject, halted), NULL},
    {"parked", CS_BOOL, offsetof(CpuStateObject, parked), NULL},
    {"executing", CS_BOOL, offsetof(CpuStateObject, executing), NULL},
    {NULL, 0, 0, NULL},
};

#define CS_PTR(o, f, type) ((type *)((char *)(o) + (f)->off))

/* The Cortex-M7's own per-slice and per-exception fields (cortexm.py's CortexM7Cpu derives from
 * _core.CortexMState): what the [m7slice] slice, the [nvicc] entry and return and the hang checks
 * read and write at every slice and exception. An object field (CS_OBJ) holds any value, NULL
 * meaning None. */
typedef struct {
    CpuStateObject cs;
    dh_opt64 pc, returned_to, hang_since;
    int64_t rate_n, entries, thread_pc, thread_ps;
    char reset_pending, hung_reported;
    CS_VEC_T(CM_ENTRY_N) entry_cache;   /* the registers the next entry stacks (end-of-slice batch) */
    CS_VEC_T(3) mask_cache;             /* PRIMASK, BASEPRI, FAULTMASK as the core holds them */
    CS_VEC_T(8) ret_state;              /* R0-R3, R12, LR, SP, xPSR[31:27] the last return restored */
    PyObject *stop, *mem_fault, *pending_removal;
} CortexMStateObject;

static PyTypeObject CortexMStateType;

/* a CPU the M7's C units were bound to (fast_return, bind_slice check it is a CortexMState) */
#define CMS(o) ((CortexMStateObject *)(o))

static cs_field CM_FIELDS[] = {
    {"_pc", CS_OPT, offsetof(CortexMStateObject, pc), NULL},
    {"_returned_to", CS_OPT, offsetof(CortexMStateObject, returned_to), NULL},
    {"_hang_since", CS_OPT, offsetof(CortexMStateObject, hang_since), NULL},
    {"_rate_n", CS_I64, offsetof(CortexMStateObject, rate_n), NULL},
    {"_entries", CS_I64, offsetof(CortexMStateObject, entries), NULL},
    {"_thread_pc", CS_I64, offsetof(CortexMStateObject, thread_pc), NULL},
    {"_thread_ps", CS_I64, offsetof(CortexMStateObject, thread_ps), NULL},
    {"_reset_pending", CS_BOOL, offsetof(CortexMStateObject, reset_pending), NULL},
    {"_hung_reported", CS_BOOL, offsetof(CortexMStateObject, hung_reported), NULL},
    {"_entry_cache", CS_VEC, offsetof(CortexMStateObject, entry_cache), NULL, CM_ENTRY_N, 0},
    {"_mask_cache", CS_VEC, offsetof(CortexMStateObject, mask_cache), NULL, 3, 0},
    {"_ret_state", CS_VEC, offsetof(CortexMStateObject, ret_state), NULL, 8, 1},
    {"_stop", CS_OBJ, offsetof(CortexMStateObject, stop), NULL},
    {"_mem_fault", CS_OBJ, offsetof(CortexMStateObject, mem_fault), NULL},
    {"_pending_hook_removal", CS_OBJ, offsetof(CortexMStateObject, pending_removal), NULL},
    {NULL, 0, 0, NULL},
};

/* The RV32 core's own slice and interrupt fields (riscv.py's RiscV32Cpu derives from
 * _core.RiscVState): what the [m7slice] RV slice and the [rvtake] entry read and write. */
typedef struct {
    CpuStateObject cs;
    int64_t mip, interrupts_taken;
    dh_opt64 stop_pc, next_pc;
    char ebreak_taken;
    CS_VEC_T(RV_ST_N) state_cache;   /* mie, priv, mstatus, pc, mtvec: the end-of-slice batch */
    CS_VEC_T(3) last_trap;           /* mcause, mepc, mtval of the last trap taken */
    PyObject *bus_fault;
} RiscVStateObject;

#define RVS(o) ((RiscVStateObject *)(o))

static PyTypeObject RiscVStateType;

static cs_field RV_FIELDS[] = {
    {"mip", CS_I64, offsetof(RiscVStateObject, mip), NULL},
    {"interrupts_taken", CS_I64, offsetof(RiscVStateObject, interrupts_taken), NULL},
    {"_stop_pc", CS_OPT, offsetof(RiscVStateObject, stop_pc), NULL},
    {"_next_pc", CS_OPT, offsetof(RiscVStateObject, next_pc), NULL},
    {"_ebreak_taken", CS_BOOL, offsetof(RiscVStateObject, ebreak_taken), NULL},
    {"_state_cache", CS_VEC, offsetof(RiscVStateObject, state_cache), NULL, RV_ST_N, 0},
    {"_bus_fault", CS_OBJ, offsetof(RiscVStateObject, bus_fault), NULL},
    {"last_trap", CS_VEC, offsetof(RiscVStateObject, last_trap), NULL, 3, 1},
    {NULL, 0, 0, NULL},
};

/* What a type is, remembered for the few types that ever ask (the CPU classes): 0 not a
 * CpuState, 1 a CpuState, 2 a CortexMState. PyObject_TypeCheck walks the MRO (~1 % of a run when
 * asked at every field access); a type's bases never change once it exists. 3: a RiscVState. */
#define CS_KIND_SLOTS 8
static PyTypeObject *cs_kind_type[CS_KIND_SLOTS];
static char cs_kind_val[CS_KIND_SLOTS];

static int cs_kind_new(PyObject *o);

/* the remembered types inline (every machine_now and field access asks), a new one out of line */
static inline int cs_kind(PyObject *o)
{
    PyTypeObject *t = Py_TYPE(o);
    for (int i = 0; i < CS_KIND_SLOTS && cs_kind_type[i]; i++)
        if (cs_kind_type[i] == t)
            return cs_kind_val[i];
    return cs_kind_new(o);
}

static int cs_kind_new(PyObject *o)
{
    PyTypeObject *t = Py_TYPE(o);
    int k = PyObject_TypeCheck(o, &CortexMStateType) ? 2 : PyObject_TypeCheck(o, &RiscVStateType) ? 3
            : PyObject_TypeCheck(o, &CpuStateType) ? 1 : 0;
    if (k) {                      /* only CPU types are remembered (immortal enough: their class) */
        for (int i = 0; i < CS_KIND_SLOTS; i++)
            if (!cs_kind_type[i]) {
                Py_INCREF(t);                 /* the class stays while we remember it */
                cs_kind_type[i] = t;
                cs_kind_val[i] = (char)k;
                break;
            }
    }
    return k;
}

static inline CpuStateObject *cs_of(PyObject *o)
{
    return cs_kind(o) ? (CpuStateObject *)o : NULL;
}

/* The field `name` names on `o`, NULL when o is not a CpuState or the name is not a field's.
 * Names are interned: a table indexed by the name's address finds the field in one or two
 * probes (cs_index, built with the types). */
#define CS_INDEX_SLOTS 128
static const cs_field *cs_index[CS_INDEX_SLOTS];

static inline size_t cs_slot(PyObject *name)
{
    return ((uintptr_t)name >> 4) & (CS_INDEX_SLOTS - 1);
}

static void cs_index_add(const cs_field *f)
{
    size_t i = cs_slot(f->key);
    while (cs_index[i])
        i = (i + 1) & (CS_INDEX_SLOTS - 1);
    cs_index[i] = f;
}

static inline const cs_field *cs_field_of(PyObject *o, PyObject *name)
{
    const cs_field *f = NULL;
    for (size_t i = cs_slot(name); cs_index[i]; i = (i + 1) & (CS_INDEX_SLOTS - 1))
        if (cs_index[i]->key == name) {
            f = cs_index[i];
            break;
        }
    if (!f)
        return NULL;
    int k = cs_kind(o);
    if (!k)
        return NULL;
    /* an architecture's field on another CpuState is an ordinary attribute there */
    if (f >= CM_FIELDS && f < CM_FIELDS + sizeof CM_FIELDS / sizeof CM_FIELDS[0])
        return k == 2 ? f : NULL;
    if (f >= RV_FIELDS && f < RV_FIELDS + sizeof RV_FIELDS / sizeof RV_FIELDS[0])
        return k == 3 ? f : NULL;
    return f;
}

/* An int for a CpuState field: ints (and __index__), never a float or None. */
static int cs_int(const cs_field *f, PyObject *v, int64_t *out)
{
    PyObject *i = PyNumber_Index(v);
    if (!i) {
        PyErr_Format(PyExc_TypeError, "CPU field %s must be an int%s, not %.100s", f->name,
                     f->kind == CS_OPT ? " or None" : "", Py_TYPE(v)->tp_name);
        return -1;
    }
    int overflow;
    long long x = PyLong_AsLongLongAndOverflow(i, &overflow);
    Py_DECREF(i);
    if (x == -1 && PyErr_Occurred())
        return -1;
    if (overflow) {
        PyErr_Format(PyExc_OverflowError, "CPU field %s: %R is beyond 64 bits", f->name, v);
        return -1;
    }
    *out = (int64_t)x;
    return 0;
}

static PyObject *cs_get(PyObject *o, void *closure)
{
    const cs_field *f = closure;
    switch (f->kind) {
    case CS_I64:
        return PyLong_FromLongLong(*CS_PTR(o, f, int64_t));
    case CS_OPT: {
        const dh_opt64 *p = CS_PTR(o, f, dh_opt64);
        if (!p->set)
            Py_RETURN_NONE;
        return PyLong_FromLongLong(p->v);
    }
    case CS_OBJ: {
        PyObject *v = *CS_PTR(o, f, PyObject *);
        v = v ? v : Py_None;
        Py_INCREF(v);
        return v;
    }
    case CS_VEC: {
        const uint32_t *p = CS_PTR(o, f, uint32_t);
        if (!p[0])
            Py_RETURN_NONE;
        PyObject *r = f->tuple ? PyTuple_New(f->len) : PyList_New(f->len);
        for (int i = 0; r && i < f->len; i++) {
            PyObject *x = PyLong_FromUnsignedLong(p[1 + i]);
            if (!x)
                Py_CLEAR(r);
            else if (f->tuple)
                PyTuple_SET_ITEM(r, i, x);
            else
                PyList_SET_ITEM(r, i, x);
        }
        return r;
    }
    default:
        return PyBool_FromLong(*CS_PTR(o, f, char));
    }
}

/* A CS_VEC field from Python: None, or a sequence of f->len ints in 0..2**32-1. */
static int cs_set_vec(PyObject *o, PyObject *v, const cs_field *f)
{
    uint32_t *p = CS_PTR(o, f, uint32_t), w[16];
    _Static_assert(CM_ENTRY_N <= 16, "CS_VEC fields hold at most 16 words");
    if (v == Py_None) {
        p[0] = 0;
        return 0;
    }
    PyObject *seq = PySequence_Fast(v, "");
    if (!seq || PySequence_Fast_GET_SIZE(seq) != f->len) {
        Py_XDECREF(seq);
        PyErr_Format(PyExc_TypeError, "CPU field %s must be None or %d ints, not %.100s", f->name, f->len,
                     Py_TYPE(v)->tp_name);
        return -1;
    }
    for (int i = 0; i < f->len; i++) {
        PyObject *x = PySequence_Fast_GET_ITEM(seq, i);
        unsigned long long u = PyLong_Check(x) ? PyLong_AsUnsignedLongLong(x) : (unsigned long long)-1;
        if (!PyLong_Check(x) || (u == (unsigned long long)-1 && PyErr_Occurred()) || u > 0xFFFFFFFFull) {
            PyErr_Clear();
            PyErr_Format(PyExc_ValueError, "CPU field %s: item %d must be an int in 0..0xFFFFFFFF, not %R",
                         f->name, i, x);
            Py_DECREF(seq);                  /* after the message: x may be seq's own item */
            return -1;
        }
        w[i] = (uint32_t)u;
    }
    Py_DECREF(seq);
    memcpy(p + 1, w, (size_t)f->len * sizeof w[0]);
    p[0] = 1;
    return 0;
}

static int cs_set(PyObject *o, PyObject *v, void *closure)
{
    const cs_field *f = closure;
    if (!v) {
        PyErr_Format(PyExc_AttributeError, "CPU field %s cannot be deleted", f->name);
        return -1;
    }
    switch (f->kind) {
    case CS_I64:
        return cs_int(f, v, CS_PTR(o, f, int64_t));
    case CS_OPT: {
        dh_opt64 *p = CS_PTR(o, f, dh_opt64);
        if (v == Py_None) {
            p->set = 0;
            p->v = 0;
            return 0;
        }
        int64_t x;
        if (cs_int(f, v, &x) < 0)
            return -1;
        p->v = x;
        p->set = 1;
        return 0;
    }
    case CS_OBJ: {
        PyObject **p = CS_PTR(o, f, PyObject *);
        Py_INCREF(v);
        Py_XSETREF(*p, v);
        return 0;
    }
    case CS_VEC:
        return cs_set_vec(o, v, f);
    default: {
        int b = PyObject_IsTrue(v);
        if (b < 0)
            return -1;
        *CS_PTR(o, f, char) = (char)b;
        return 0;
    }
    }
}

static PyGetSetDef cs_getset[sizeof CS_FIELDS / sizeof CS_FIELDS[0]];

static PyMemberDef cs_members[] = {
    {"machine", T_OBJECT, offsetof(CpuStateObject, machine), 0, "the Machine this CPU belongs to"},
    {NULL, 0, 0, 0, NULL},
};

/* The object fields (CS_OBJ) of o's state type, base fields first: the field tables are the one
 * list of what a CPU state holds, for the GC as for the attribute access. */
static void cs_tables(PyObject *o, const cs_field *t[2])
{
    t[0] = CS_FIELDS;
    t[1] = PyObject_TypeCheck(o, &CortexMStateType) ? CM_FIELDS
           : PyObject_TypeCheck(o, &RiscVStateType) ? RV_FIELDS : NULL;
}

static int cs_traverse(PyObject *o, visitproc visit, void *arg)
{
    const cs_field *t[2];
    cs_tables(o, t);
    Py_VISIT(((CpuStateObject *)o)->machine);
    Py_VISIT(((CpuStateObject *)o)->m_take);
    Py_VISIT(((CpuStateObject *)o)->m_pending);
    Py_VISIT(((CpuStateObject *)o)->m_run);
    for (int k = 0; k < 2; k++)
        for (const cs_field *f = t[k]; f && f->name; f++)
            if (f->kind == CS_OBJ)
                Py_VISIT(*CS_PTR(o, f, PyObject *));
    return 0;
}

static int cs_clear(PyObject *o)
{
    const cs_field *t[2];
    cs_tables(o, t);
    Py_CLEAR(((CpuStateObject *)o)->machine);
    Py_CLEAR(((CpuStateObject *)o)->m_take);
    Py_CLEAR(((CpuStateObject *)o)->m_pending);
    Py_CLEAR(((CpuStateObject *)o)->m_run);
    for (int k = 0; k < 2; k++)
        for (const cs_field *f = t[k]; f && f->name; f++)
            if (f->kind == CS_OBJ)
                Py_CLEAR(*CS_PTR(o, f, PyObject *));
    return 0;
}

/* The driver's methods (m_take, m_pending, m_run) follow the instance attributes of their names:
 * every set and delete goes through here. (An instance __dict__ written directly is not seen.) */
static PyObject *cs_meth_names[3];

static int cs_setattro(PyObject *o, PyObject *name, PyObject *v)
{
    if (PyObject_GenericSetAttr(o, name, v) < 0)
        return -1;
    if (!cs_meth_names[0] || !PyUnicode_Check(name))
        return 0;
    CpuStateObject *c = (CpuStateObject *)o;
    PyObject **slots[3] = {&c->m_take, &c->m_pending, &c->m_run};
    for (int i = 0; i < 3; i++)
        if (name == cs_meth_names[i]
            || (!PyUnicode_CHECK_INTERNED(name) && PyUnicode_Compare(name, cs_meth_names[i]) == 0)) {
            Py_XINCREF(v);
            Py_XSETREF(*slots[i], v);
            break;
        }
    return 0;
}

static void cs_dealloc(PyObject *o)
{
    PyObject_GC_UnTrack(o);
    cs_clear(o);
    Py_TYPE(o)->tp_free(o);
}

#define CS_STATE_TYPE(var, pyname, doc, size, getset)                                  \
    static PyTypeObject var = {                                                       \
        PyVarObject_HEAD_INIT(NULL, 0)                                                \
        .tp_name = "duohil.engines.builtin.native._core." pyname,                     \
        .tp_doc = doc,                                                                \
        .tp_basicsize = size,                                                         \
        .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,     \
        .tp_new = PyType_GenericNew,                                                  \
        .tp_dealloc = cs_dealloc,                                                     \
        .tp_traverse = cs_traverse,                                                   \
        .tp_clear = cs_clear,                                                         \
        .tp_setattro = cs_setattro,                                                   \
        .tp_getset = getset,                                                          \
    }

static PyGetSetDef cm_state_getset[sizeof CM_FIELDS / sizeof CM_FIELDS[0]];
static PyGetSetDef rv_state_getset[sizeof RV_FIELDS / sizeof RV_FIELDS[0]];

CS_STATE_TYPE(CpuStateType, "CpuState",
              "The CPU's time state (cpu.py's CpuCore derives from it): C fields, Python attributes.",
              sizeof(CpuStateObject), cs_getset);
CS_STATE_TYPE(CortexMStateType, "CortexMState",
              "The Cortex-M7's slice and exception fields (cortexm.py's CortexM7Cpu derives from it).",
              sizeof(CortexMStateObject), cm_state_getset);
CS_STATE_TYPE(RiscVStateType, "RiscVState",
              "The RV32 core's slice and interrupt fields (riscv.py's RiscV32Cpu derives from it).",
              sizeof(RiscVStateObject), rv_state_getset);

/* One state type: its fields' names interned and indexed, their getsets, ready, in the module. */
static int add_state_type(PyObject *m, PyTypeObject *type, const char *name, cs_field *fields,
                          PyGetSetDef *getset, PyTypeObject *base)
{
    size_t i = 0;
    for (cs_field *f = fields; f->name; f++, i++) {
        if (!(f->key = PyUnicode_InternFromString(f->name)))
            return -1;
        getset[i] = (PyGetSetDef){f->name, cs_get, cs_set, NULL, f};
        cs_index_add(f);
    }
    getset[i] = (PyGetSetDef){NULL, NULL, NULL, NULL, NULL};
    type->tp_base = base;
    if (PyType_Ready(type) < 0)
        return -1;
    Py_INCREF(type);
    if (PyModule_AddObject(m, name, (PyObject *)type) < 0) {
        Py_DECREF(type);
        return -1;
    }
    return 0;
}

/* [pollc] CpuState.poll_hint (defined after the bus, whose write count it reads) */
static PyObject *cs_poll_hint_m(PyObject *self, PyObject *const *args, Py_ssize_t nargs);
static PyObject *str_pc_poll_hint, *cs_poll_hint_descr;
static int cpu_poll_hint(PyObject *cpu, PyObject *addr, int has_wake, int64_t wake);
#define CS_POLL_PARK_AFTER 4     /* same-address status reads in a row, no write, before parking */

static PyMethodDef cs_methods[] = {
    {"poll_hint", (PyCFunction)(void (*)(void))cs_poll_hint_m, METH_FASTCALL,
     "poll_hint(addr, wake_ps): a status-register read whose value cannot change before wake_ps "
     "(None: before some event); after POLL_PARK_AFTER such reads of one address in a row with no "
     "MMIO write between, and no interrupt pending, the executing core parks until then."},
    {NULL, NULL, 0, NULL},
};

static int add_cpustate_type(PyObject *m)
{
    const char *meths[3] = {"take_interrupts", "interrupt_pending", "_run_slice"};
    for (int i = 0; i < 3; i++)
        if (!(cs_meth_names[i] = PyUnicode_InternFromString(meths[i])))
            return -1;
    if (!(str_pc_poll_hint = PyUnicode_InternFromString("poll_hint")))
        return -1;
    CpuStateType.tp_members = cs_members;
    CpuStateType.tp_methods = cs_methods;
    if (add_state_type(m, &CpuStateType, "CpuState", CS_FIELDS, cs_getset, NULL) < 0)
        return -1;
    cs_poll_hint_descr = _PyType_Lookup(&CpuStateType, str_pc_poll_hint);   /* borrowed: static type */
    if (PyModule_AddIntConstant(m, "POLL_PARK_AFTER", CS_POLL_PARK_AFTER) < 0)
        return -1;
    return 0
           || add_state_type(m, &CortexMStateType, "CortexMState", CM_FIELDS, cm_state_getset,
                             &CpuStateType) < 0
           || add_state_type(m, &RiscVStateType, "RiscVState", RV_FIELDS, rv_state_getset,
                             &CpuStateType) < 0 ? -1 : 0;
}

static PyObject *cpu_fns[5];      /* CpuCore's next_deadline, advance_to, settle, cycles_at, now_ps */
static PyObject *str_cycles_at, *str_now_ps, *str_halted, *str_stall_until, *str_sleeping,
    *str_park_until, *str_interrupt_pending, *str_take_interrupts, *str_cycles, *str_hz,
    *str_executing, *str_slice_start_ps, *str_poll_addr, *str_poll_count, *str_run_slice,
    *str_instructions, *str_slices, *str_machine, *str_record, *str_stall_end, *str_cpu, *str_name,
    *str_scheduler, *str_now, *str_pending_hz, *str_apply_hz;

static PyObject *mod_register_cpu_class(PyObject *Py_UNUSED(m), PyObject *cls)
{
    PyObject *names[5] = {str_next_deadline, str_advance_to, str_settle, str_cycles_at, str_now_ps};
    if (!PyType_Check(cls))
        return PyErr_Format(PyExc_TypeError, "register_cpu_class needs a class");
    for (int i = 0; i < 5; i++) {
        PyObject *f = _PyType_Lookup((PyTypeObject *)cls, names[i]);
        if (!f)
            return PyErr_Format(PyExc_TypeError, "%R has no %S", cls, names[i]);
        Py_INCREF(f);
        Py_XSETREF(cpu_fns[i], f);
    }
    Py_RETURN_NONE;
}

/* 1 when the C driver may stand in for the CPU's methods: its class did not override them and the
 * instance does not shadow them. */
static int cpu_is_native(PyObject *cpu)
{
    PyObject *names[5] = {str_next_deadline, str_advance_to, str_settle, str_cycles_at, str_now_ps};
    if (!cpu_fns[0] || !cs_of(cpu))
        return 0;
    for (int i = 0; i < 5; i++)
        if (_PyType_Lookup(Py_TYPE(cpu), names[i]) != cpu_fns[i])
            return 0;
    PyObject *d = PyObject_GenericGetDict(cpu, NULL);
    if (!d) {
        PyErr_Clear();
        return 0;
    }
    int shadowed = 0;
    for (int i = 0; i < 5 && !shadowed; i++)
        shadowed = PyDict_Contains(d, names[i]) != 0;
    Py_DECREF(d);
    return !shadowed;
}

typedef __int128 i128;

static int64_t floordiv(i128 a, i128 b)           /* Python's a // b for b > 0 */
{
    i128 q = a / b;
    if ((a % b) != 0 && a < 0)
        q -= 1;
    return (int64_t)q;
}

static int get_i64(PyObject *o, PyObject *name, int64_t *out)
{
    const cs_field *f = cs_field_of(o, name);
    if (f && f->kind == CS_I64) {
        *out = *CS_PTR(o, f, int64_t);
        return 0;
    }
    PyObject *v = PyObject_GetAttr(o, name);
    if (!v)
        return -1;
    int rc = as_i64(v, out);
    Py_DECREF(v);
    return rc;
}

/* 1 true, 0 false, -1 error */
static int get_truth(PyObject *o, PyObject *name)
{
    const cs_field *f = cs_field_of(o, name);
    if (f && f->kind == CS_BOOL)
        return *CS_PTR(o, f, char);
    PyObject *v = PyObject_GetAttr(o, name);
    if (!v)
        return -1;
    int rc = PyObject_IsTrue(v);
    Py_DECREF(v);
    return rc;
}

/* o.name = bool(b) */
static int set_truth(PyObject *o, PyObject *name, int b)
{
    const cs_field *f = cs_field_of(o, name);
    if (f && f->kind == CS_BOOL) {
        *CS_PTR(o, f, char) = (char)(b != 0);
        return 0;
    }
    return PyObject_SetAttr(o, name, b ? Py_True : Py_False);
}

/* o.name as a new reference: a CpuState field read from the struct, else the attribute */
static PyObject *cs_getattr(PyObject *o, PyObject *name)
{
    const cs_field *f = cs_field_of(o, name);
    return f ? cs_get(o, (void *)f) : PyObject_GetAttr(o, name);
}

/* o.name = v: a CpuState field stored with its attribute's rules, else the attribute */
static int cs_setattr(PyObject *o, PyObject *name, PyObject *v)
{
    const cs_field *f = cs_field_of(o, name);
    return f ? cs_set(o, v, (void *)f) : PyObject_SetAttr(o, name, v);
}

/* o.name = v (an int) */
static int cs_set_i64(PyObject *o, PyObject *name, int64_t v)
{
    const cs_field *f = cs_field_of(o, name);
    if (f && f->kind == CS_I64) {
        *CS_PTR(o, f, int64_t) = v;
        return 0;
    }
    if (f && f->kind == CS_OPT) {
        *CS_PTR(o, f, dh_opt64) = (dh_opt64){v, 1};
        return 0;
    }
    PyObject *x = PyLong_FromLongLong(v);
    if (!x)
        return -1;
    int rc = cs_setattr(o, name, x);
    Py_DECREF(x);
    return rc;
}

static int call_truth(PyObject *o, PyObject *name)
{
    PyObject *r = PyObject_CallMethodNoArgs(o, name);
    if (!r)
        return -1;
    int rc = PyObject_IsTrue(r);
    Py_DECREF(r);
    return rc;
}

/* cpu.<name>() as a truth value, `m` the instance's own value of that attribute when set (the
 * CpuState's mirror), else looked up */
static int call_truth_m(PyObject *cpu, PyObject *m, PyObject *name)
{
    if (!m)
        return call_truth(cpu, name);
    Py_INCREF(m);                         /* the call may replace the instance's attribute */
    PyObject *r = PyObject_CallNoArgs(m);
    Py_DECREF(m);
    if (!r)
        return -1;
    int rc = r == Py_False ? 0 : r == Py_True ? 1 : PyObject_IsTrue(r);
    Py_DECREF(r);
    return rc;
}

/* The slice driver's CPU: a CpuState (cpu_is_native and the cpu_* functions check it). */
#define CS(o) ((CpuStateObject *)(o))

static int cs_require(PyObject *cpu)
{
    if (cs_of(cpu))
        return 0;
    PyErr_Format(PyExc_TypeError, "the C slice driver needs a CpuCore (a _core.CpuState), not %.100s",
                 Py_TYPE(cpu)->tp_name);
    return -1;
}

/* cycles_at(t) = -((-t * hz) // PS_PER_S) */
static int64_t cs_cycles_at(const CpuStateObject *c, int64_t t)
{
    return -floordiv(-(i128)t * c->hz, PS_PER_S);
}

/* now_ps() = cycles * PS_PER_S // hz; a clear error for hz <= 0 (Python: ZeroDivisionError) */
static int cs_now_ps(const CpuStateObject *c, int64_t *out)
{
    if (c->hz <= 0) {
        PyErr_Format(PyExc_ZeroDivisionError, "CPU clock hz=%lld", (long long)c->hz);
        return -1;
    }
    *out = floordiv((i128)c->cycles * PS_PER_S, c->hz);
    return 0;
}

/* next_deadline: *none = 1 for "asks for no time". */
static int c_next_deadline(PyObject *cpu, int64_t now, int64_t quantum, int64_t *d, int *none)
{
    CpuStateObject *c = CS(cpu);
    if (c->halted)
        return *none = 1, 0;
    if (c->stall_until.set)
        return *d = c->stall_until.v, *none = 0, 0;
    if (c->parked) {
        *none = !c->park_until.set;
        if (c->park_until.set)
            *d = c->park_until.v;
        return 0;
    }
    if (c->sleeping) {
        int ip = call_truth_m(cpu, c->m_pending, str_interrupt_pending);
        if (ip < 0)
            return -1;
        if (!ip)
            return *none = 1, 0;
    }
    *d = now + quantum;
    *none = 0;
    return 0;
}

static int c_settle(PyObject *cpu, int64_t t)
{
    CpuStateObject *c = CS(cpu);
    int64_t floor = cs_cycles_at(c, t);
    if (c->cycles < floor)
        c->cycles = floor;
    return 0;
}

static int record_stall_end(PyObject *cpu)
{
    CpuStateObject *c = CS(cpu);
    int64_t now_ps;
    if (cs_now_ps(c, &now_ps) < 0)
        return -1;
    PyObject *machine = c->machine ? c->machine : Py_None;
    PyObject *record = PyObject_GetAttr(machine, str_record);
    PyObject *name = PyObject_GetAttr(cpu, str_name);
    PyObject *t = PyLong_FromLongLong(now_ps);
    PyObject *kw = PyDict_New();
    PyObject *args = PyTuple_Pack(1, str_stall_end);
    PyObject *r = NULL;
    if (record && name && t && kw && args && PyDict_SetItem(kw, str_t, t) == 0
        && PyDict_SetItem(kw, str_cpu, name) == 0)
        r = PyObject_Call(record, args, kw);
    Py_XDECREF(record);
    Py_XDECREF(name);
    Py_XDECREF(t);
    Py_XDECREF(kw);
    Py_XDECREF(args);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

/* CpuCore.advance_to(t), the scheduler's clock being sched_now. The order of the Python calls
 * (take_interrupts, interrupt_pending, unpark, _run_slice, _apply_hz, machine.record) is cpu.py's
 * description; every field is read again after each of them (they may change any). */
static int c_advance_to(PyObject *cpu, int64_t t, int64_t sched_now)
{
    CpuStateObject *c = CS(cpu);
    int64_t floor = cs_cycles_at(c, sched_now);
    if (c->cycles < floor)
        c->cycles = floor;
    int64_t target = cs_cycles_at(c, t);
    if (c->cycles >= target)
        return 0;
    int took = 0, b;
    if (c->sleeping && !c->stall_until.set && !c->parked && !c->halted) {
        if ((b = call_truth_m(cpu, c->m_take, str_take_interrupts)) < 0)
            return -1;
        if (b) {
            c->sleeping = 0;
            took = 1;
        } else {
            if ((b = call_truth_m(cpu, c->m_pending, str_interrupt_pending)) < 0)
                return -1;
            if (!b)
                return c->cycles = target, 0;
        }
    }
    for (;;) {
        if (c->cycles >= target)
            return 0;
        if (c->halted)
            return c->cycles = target, 0;
        if (c->stall_until.set) {
            int64_t v = c->stall_until.v;
            if (v >= t)
                return c->cycles = target, 0;
            int64_t ca = cs_cycles_at(c, v);
            if (c->cycles < ca)
                c->cycles = ca;
            c->stall_until.set = 0;
            if (record_stall_end(cpu) < 0)
                return -1;
            continue;
        }
        if (c->parked) {
            if (!c->park_until.set || c->park_until.v >= t)
                return c->cycles = target, 0;
            int64_t ca = cs_cycles_at(c, c->park_until.v);
            if (c->cycles < ca)
                c->cycles = ca;
            PyObject *r = PyObject_CallMethodNoArgs(cpu, str_unpark);
            if (!r)
                return -1;
            Py_DECREF(r);
            continue;
        }
        if (took) {
            took = 0;
        } else {
            if ((b = call_truth_m(cpu, c->m_take, str_take_interrupts)) < 0)
                return -1;
            if (b)
                c->sleeping = 0;
        }
        if (c->sleeping) {
            if ((b = call_truth_m(cpu, c->m_pending, str_interrupt_pending)) < 0)
                return -1;
            if (!b)
                return c->cycles = target, 0;
            c->sleeping = 0;
            continue;
        }
        int64_t cycles = c->cycles, n = target - cycles, start;
        if (cs_now_ps(c, &start) < 0)
            return -1;
        c->executing = 1;
        c->slice_start_ps = start;
        c->poll_addr.set = 0;
        c->poll_count = 0;
        PyObject *pn = PyLong_FromLongLong(n);
        if (!pn)
            return -1;
        PyObject *run = c->m_run, *r;
        if (run) {                        /* held: the slice may replace the instance's attribute */
            Py_INCREF(run);
            r = PyObject_CallOneArg(run, pn);
            Py_DECREF(run);
        } else {
            r = PyObject_CallMethodOneArg(cpu, str_run_slice, pn);
        }
        Py_DECREF(pn);
        c->executing = 0;                  /* finally: whatever _run_slice did */
        if (!r)
            return -1;
        Py_DECREF(r);
        c->cycles = cycles + n;
        c->instructions += n;
        c->slices += 1;
        /* a core clock change inside the slice (the RCC model) takes effect at its end */
        if (c->pending_hz.set) {
            PyObject *pending = PyLong_FromLongLong(c->pending_hz.v);
            if (!pending)
                return -1;
            r = PyObject_CallMethodOneArg(cpu, str_apply_hz, pending);
            Py_DECREF(pending);
            if (!r)
                return -1;
            Py_DECREF(r);
            target = cs_cycles_at(c, t);
        }
    }
}

static PyObject *mod_drives_natively(PyObject *Py_UNUSED(m), PyObject *cpu)
{
    return PyBool_FromLong(cpu_is_native(cpu));
}

/* The scheduler's clock as the CPU sees it: cpu.machine.scheduler.now. */
static int cpu_sched_now(PyObject *cpu, SchedObject *s, int64_t *now)
{
    PyObject *m = CS(cpu)->machine ? CS(cpu)->machine : Py_None;
    if (PyObject_TypeCheck(m, &MachineStateType) && ((MachineStateObject *)m)->scheduler == (PyObject *)s) {
        *now = s->now;                                                   /* [machstate] */
        return 0;
    }
    PyObject *sc = PyObject_GetAttr(m, str_scheduler);
    if (!sc)
        return -1;
    int rc = 0;
    if (sc == (PyObject *)s)
        *now = s->now;
    else
        rc = get_i64(sc, str_now, now);
    Py_DECREF(sc);
    return rc;
}

/* CpuCore.next_deadline / advance_to / settle called from Python (cpu.py's methods): the same C,
 * for callers outside the loop and subclasses that wrap them. */
static PyObject *mod_cpu_next_deadline(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t nargs)
{
    int64_t now, quantum, d;
    int none;
    if (nargs != 3)
        return PyErr_Format(PyExc_TypeError, "cpu_next_deadline(cpu, now, quantum)");
    if (cs_require(args[0]) < 0 || as_i64(args[1], &now) < 0 || as_i64(args[2], &quantum) < 0
        || c_next_deadline(args[0], now, quantum, &d, &none) < 0)
        return NULL;
    if (none)
        Py_RETURN_NONE;
    return PyLong_FromLongLong(d);
}

static PyObject *mod_cpu_advance_to(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t nargs)
{
    int64_t t, sched_now;
    if (nargs != 2)
        return PyErr_Format(PyExc_TypeError, "cpu_advance_to(cpu, t)");
    if (cs_require(args[0]) < 0 || as_i64(args[1], &t) < 0 || cpu_sched_now(args[0], NULL, &sched_now) < 0
        || c_advance_to(args[0], t, sched_now) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *mod_cpu_settle(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t nargs)
{
    int64_t t;
    if (nargs != 2)
        return PyErr_Format(PyExc_TypeError, "cpu_settle(cpu, t)");
    if (cs_require(args[0]) < 0 || as_i64(args[1], &t) < 0 || c_settle(args[0], t) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* flags[i]: cpus[i] is driven by the C slice driver (fixed when run_until starts). */
/* Scheduler.stop_request (scheduler.py): the host asks every run to stop at its next step. */
static PyObject *stop_source, *stop_exception, *str_stop_request;

static PyObject *mod_set_stop_source(PyObject *Py_UNUSED(m), PyObject *args)
{
    PyObject *src, *exc;
    if (!PyArg_ParseTuple(args, "OO:set_stop_source", &src, &exc))
        return NULL;
    if (!PyExceptionClass_Check(exc))
        return PyErr_Format(PyExc_TypeError, "set_stop_source needs an exception class");
    Py_INCREF(src);
    Py_INCREF(exc);
    Py_XSETREF(stop_source, src);
    Py_XSETREF(stop_exception, exc);
    Py_RETURN_NONE;
}

static int check_stop(void)
{
    if (!stop_source)
        return 0;
    PyObject *v = PyObject_GetAttr(stop_source, str_stop_request);
    if (!v)
        return -1;
    if (v == Py_None) {
        Py_DECREF(v);
        return 0;
    }
    PyErr_SetObject(stop_exception, v);
    Py_DECREF(v);
    return -1;
}

static int run_loop(SchedObject *s, int64_t t_end, PyObject *active, const char *flags, Py_ssize_t nflags,
                    char *active_flags)
{
    PyObject *callargs[3];
    for (;;) {
        if (check_stop() < 0)
            return -1;
        int64_t now = s->now;
        if (((s->heap.n && s->heap.v[0].t <= now) || s->lazy_min <= now) && fire_due(s, now) < 0)
            return -1;
        if (now >= t_end)
            return 0;
        int64_t horizon = t_end;
        drop_cancelled(s);
        if (s->lazy_min != NEVER) {
            int64_t nxt;
            if (next_event(s, &nxt) < 0)
                return -1;
            if (nxt < horizon)
                horizon = nxt;
        } else if (s->heap.n && s->heap.v[0].t < horizon) {
            horizon = s->heap.v[0].t;
        }
        int64_t quantum = s->quantum;
        if (PyList_SetSlice(active, 0, PY_SSIZE_T_MAX, NULL) < 0)
            return -1;
        if (PyList_GET_SIZE(s->cpus) > nflags) {     /* active_flags has room for nflags CPUs */
            PyErr_SetString(PyExc_RuntimeError, "a CPU was added to the scheduler inside run_until");
            return -1;
        }
        /* now and the quantum as ints, made only for a CPU driven by its Python methods */
        PyObject *pnow = NULL, *pq = NULL;
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(s->cpus); i++) {
            PyObject *cpu = PyList_GET_ITEM(s->cpus, i);
            if (PyList_GET_SIZE(active) >= nflags) {     /* add_cpu from inside this step */
                Py_XDECREF(pnow);
                Py_XDECREF(pq);
                PyErr_SetString(PyExc_RuntimeError, "a CPU was added to the scheduler inside run_until");
                return -1;
            }
            if (i < nflags && flags[i]) {
                int64_t dl;
                int none;
                Py_INCREF(cpu);
                int rc = c_next_deadline(cpu, now, quantum, &dl, &none);
                if (rc == 0 && !none) {
                    active_flags[PyList_GET_SIZE(active)] = 1;
                    rc = PyList_Append(active, cpu);
                    if (dl <= now)          /* trap (c) */
                        dl = now + quantum;
                    if (dl < horizon)
                        horizon = dl;
                }
                Py_DECREF(cpu);
                if (rc < 0) {
                    Py_XDECREF(pnow);
                    Py_XDECREF(pq);
                    return -1;
                }
                continue;
            }
            if (!pnow && (!(pnow = PyLong_FromLongLong(now)) || !(pq = PyLong_FromLongLong(quantum)))) {
                Py_XDECREF(pnow);
                return -1;
            }
            callargs[0] = cpu;
            callargs[1] = pnow;
            callargs[2] = pq;
            Py_INCREF(cpu);
            PyObject *d = PyObject_VectorcallMethod(str_next_deadline, callargs,
                                                    3 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
            int rc = 0;
            if (!d) {
                rc = -1;
            } else if (d != Py_None) {
                int64_t dl;
                active_flags[PyList_GET_SIZE(active)] = 0;
                if (as_i64(d, &dl) < 0 || PyList_Append(active, cpu) < 0) {
                    rc = -1;
                } else {
                    if (dl <= now)          /* trap (c): due now means awake, not a 1 ps step */
                        dl = now + quantum;
                    if (dl < horizon)
                        horizon = dl;
                }
            }
            Py_XDECREF(d);
            Py_DECREF(cpu);
            if (rc < 0) {
                Py_DECREF(pnow);
                Py_DECREF(pq);
                return -1;
            }
        }
        Py_XDECREF(pnow);
        Py_XDECREF(pq);
        if (horizon > now) {
            PyObject *ph = NULL;                 /* horizon as an int, for a Python-path CPU */
            for (Py_ssize_t i = 0; i < PyList_GET_SIZE(active); i++) {
                PyObject *cpu = PyList_GET_ITEM(active, i);
                if (active_flags[i]) {
                    int64_t sched_now;
                    Py_INCREF(cpu);
                    int rc = cpu_sched_now(cpu, s, &sched_now);
                    if (rc == 0)
                        rc = c_advance_to(cpu, horizon, sched_now);
                    Py_DECREF(cpu);
                    if (rc < 0) {
                        Py_XDECREF(ph);
                        return -1;
                    }
                    continue;
                }
                if (!ph && !(ph = PyLong_FromLongLong(horizon)))
                    return -1;
                callargs[0] = cpu;
                callargs[1] = ph;
                PyObject *r = PyObject_VectorcallMethod(str_advance_to, callargs,
                                                        2 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
                if (!r) {
                    Py_DECREF(ph);
                    return -1;
                }
                Py_DECREF(r);
            }
            Py_XDECREF(ph);
            s->steps++;
        }
        if (((s->heap.n && s->heap.v[0].t <= horizon) || s->lazy_min <= horizon)
            && fire_due(s, horizon) < 0)
            return -1;
        s->now = horizon;
    }
}

static PyObject *sched_run_until(SchedObject *s, PyObject *arg)
{
    int64_t t_end;
    if (as_i64(arg, &t_end) < 0)
        return NULL;
    PyObject *active = PyList_New(0);
    if (!active)
        return NULL;
    Py_ssize_t ncpu = PyList_GET_SIZE(s->cpus);
    char *flags = PyMem_Calloc((size_t)ncpu + 1, 2);    /* flags[ncpu], then active_flags[ncpu] */
    if (!flags) {
        Py_DECREF(active);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < ncpu; i++)
        flags[i] = (char)cpu_is_native(PyList_GET_ITEM(s->cpus, i));
    int rc = run_loop(s, t_end, active, flags, ncpu, flags + ncpu + 1);
    Py_DECREF(active);
    /* finally: bring every CPU's clock up to now, whatever ended the loop */
    PyObject *exc_type = NULL, *exc_val = NULL, *exc_tb = NULL;
    if (rc < 0)
        PyErr_Fetch(&exc_type, &exc_val, &exc_tb);
    PyObject *pnow = PyLong_FromLongLong(s->now);
    int settle_failed = pnow == NULL;
    for (Py_ssize_t i = 0; pnow && i < PyList_GET_SIZE(s->cpus); i++) {
        if (i < ncpu && flags[i]) {
            PyObject *cpu = PyList_GET_ITEM(s->cpus, i);
            Py_INCREF(cpu);
            int src = c_settle(cpu, s->now);
            Py_DECREF(cpu);
            if (src < 0) {
                settle_failed = 1;
                break;
            }
            continue;
        }
        PyObject *callargs[2] = {PyList_GET_ITEM(s->cpus, i), pnow};
        PyObject *r = PyObject_VectorcallMethod(str_settle, callargs,
                                                2 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
        if (!r) {
            settle_failed = 1;
            break;
        }
        Py_DECREF(r);
    }
    Py_XDECREF(pnow);
    PyMem_Free(flags);
    if (settle_failed) {            /* the finally clause's exception replaces the loop's */
        Py_XDECREF(exc_type);
        Py_XDECREF(exc_val);
        Py_XDECREF(exc_tb);
        return NULL;
    }
    if (rc < 0) {
        PyErr_Restore(exc_type, exc_val, exc_tb);
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *sched_run_for(SchedObject *s, PyObject *arg)
{
    int64_t d;
    if (as_i64(arg, &d) < 0)
        return NULL;
    PyObject *t = PyLong_FromLongLong(s->now + d);
    if (!t)
        return NULL;
    PyObject *r = sched_run_until(s, t);
    Py_DECREF(t);
    return r;
}

static PyObject *sched_pending(SchedObject *s, PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromSize_t(s->heap.n);
}

/* `_heap`: a snapshot list of (time, seq, event) in heap-array order (heapq's
 * layout), for tests that look inside. */
static PyObject *sched_get_heap(SchedObject *s, void *Py_UNUSED(c))
{
    PyObject *out = PyList_New((Py_ssize_t)s->heap.n);
    if (!out)
        return NULL;
    for (size_t i = 0; i < s->heap.n; i++) {
        dh_entry *e = &s->heap.v[i];
        PyObject *row = Py_BuildValue("(LLO)", (long long)e->t, (long long)e->seq, (PyObject *)e->item);
        if (!row) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, (Py_ssize_t)i, row);
    }
    return out;
}

static PyGetSetDef sched_getset[] = {
    {"_heap", (getter)sched_get_heap, NULL, "snapshot of the heap: [(time, seq, event)]", NULL},
    {NULL},
};

static PyMethodDef sched_methods[] = {
    {"at", (PyCFunction)(void (*)(void))sched_at, METH_FASTCALL | METH_KEYWORDS,
     "at(t, fn, *args, name='') -> Event: fn(*args) at absolute time t (clamped to now)."},
    {"after", (PyCFunction)(void (*)(void))sched_after, METH_FASTCALL | METH_KEYWORDS,
     "after(delay, fn, *args, name='') -> Event"},
    {"at_seq", (PyCFunction)(void (*)(void))sched_at_seq, METH_FASTCALL | METH_KEYWORDS,
     "at_seq(t, seq, fn, *args, name='') -> Event with a reserved sequence number"},
    {"reserve_seq", (PyCFunction)sched_reserve_seq, METH_NOARGS, NULL},
    {"defer", (PyCFunction)(void (*)(void))sched_defer, METH_FASTCALL, NULL},
    {"cancel_deferred", (PyCFunction)sched_cancel_deferred, METH_O, NULL},
    {"next_event_time", (PyCFunction)sched_next_event_time, METH_NOARGS, NULL},
    {"park", (PyCFunction)sched_park, METH_O, NULL},
    {"on_event", (PyCFunction)sched_on_event, METH_O, NULL},
    {"add_cpu", (PyCFunction)sched_add_cpu, METH_O, NULL},
    {"run_until", (PyCFunction)sched_run_until, METH_O, NULL},
    {"run_for", (PyCFunction)sched_run_for, METH_O, NULL},
    {"pending", (PyCFunction)sched_pending, METH_NOARGS,
     "Number of entries in the heap, cancelled ones included (tests, bench)."},
    {NULL},
};

static PyMemberDef sched_members[] = {
    {"quantum", T_LONGLONG, offsetof(SchedObject, quantum), 0, NULL},
    {"now", T_LONGLONG, offsetof(SchedObject, now), 0, NULL},
    {"steps", T_LONGLONG, offsetof(SchedObject, steps), 0, NULL},
    {"cpus", T_OBJECT, offsetof(SchedObject, cpus), READONLY, NULL},
    {"log", T_OBJECT, offsetof(SchedObject, log), READONLY, NULL},
    {NULL},
};

static PyTypeObject SchedType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "duohil.engines.builtin.native._core.Scheduler",
    .tp_basicsize = sizeof(SchedObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_BASETYPE,
    .tp_doc = "The builtin engine's scheduler (scheduler.py) with its heap and time loop in C.",
    .tp_new = sched_new,
    .tp_dealloc = (destructor)sched_dealloc,
    .tp_traverse = (traverseproc)sched_traverse,
    .tp_clear = (inquiry)sched_clear,
    .tp_methods = sched_methods,
    .tp_members = sched_members,
    .tp_getset = sched_getset,
};

/* -- Machine.now in C ---------------------------------------------------------------------------------
 *
 * machine.py's Machine.now: the running slice's start while the CPU executes, else the scheduler's
 * now. Every unit asks through machine_now(), which computes it here when the machine's class keeps
 * Machine.now (registered by machine.py: register_machine_now) and calls the method otherwise (a
 * machine class of a user's or a test's own). ~20 000 calls per virtual second of nominal traffic
 * from the USART, DMA, timers, D-cache, IWDG, SysTick and the peer UART. */

static PyObject *machine_now_fn;

static PyObject *mod_register_machine_now(PyObject *Py_UNUSED(m), PyObject *fn)
{
    Py_INCREF(fn);
    Py_XSETREF(machine_now_fn, fn);
    Py_RETURN_NONE;
}

/* [machstate] machine.py's Machine derives from _core.MachineState: its `cpu` and `scheduler`
 * are struct members (ordinary attributes for Python), so the ~20 000 machine_now a virtual
 * second of nominal traffic (every native unit's clock, the M7's entry and return) read them
 * without two instance-dict lookups. */
/* (MachineStateObject and MachineStateType are declared with CpuState, above) */

static int mst_traverse(MachineStateObject *o, visitproc visit, void *arg)
{
    Py_VISIT(o->cpu);
    Py_VISIT(o->scheduler);
    return 0;
}

static int mst_clear(MachineStateObject *o)
{
    Py_CLEAR(o->cpu);
    Py_CLEAR(o->scheduler);
    return 0;
}

static void mst_dealloc(MachineStateObject *o)
{
    PyObject_GC_UnTrack(o);
    mst_clear(o);
    Py_TYPE(o)->tp_free((PyObject *)o);
}

static PyMemberDef mst_members[] = {
    {"cpu", T_OBJECT, offsetof(MachineStateObject, cpu), 0, "the machine's CPU (None before attach_cpu)"},
    {"scheduler", T_OBJECT, offsetof(MachineStateObject, scheduler), 0, "the Scheduler it runs on"},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject MachineStateType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "duohil.engines.builtin.native._core.MachineState",
    .tp_basicsize = sizeof(MachineStateObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_traverse = (traverseproc)mst_traverse,
    .tp_clear = (inquiry)mst_clear,
    .tp_dealloc = (destructor)mst_dealloc,
    .tp_members = mst_members,
    .tp_doc = "A machine's cpu and scheduler as C members (machine.py's Machine derives from it).",
};

static int add_machinestate_type(PyObject *m)
{
    if (PyType_Ready(&MachineStateType) < 0)
        return -1;
    Py_INCREF(&MachineStateType);
    if (PyModule_AddObject(m, "MachineState", (PyObject *)&MachineStateType) < 0) {
        Py_DECREF(&MachineStateType);
        return -1;
    }
    return 0;
}

/* Machine.now's rule, the method not asked. `state`: the machine is known to be a MachineState
 * (1), known not to be (0), or to be checked (-1). */
static int plain_machine_now(PyObject *machine, int state, int64_t *out)
{
    if (state < 0)
        state = PyObject_TypeCheck(machine, &MachineStateType);
    if (state) {
        MachineStateObject *ms = (MachineStateObject *)machine;
        PyObject *c = ms->cpu, *s = ms->scheduler;
        if (c && c != Py_None && cs_of(c)) {
            if (CS(c)->executing) {
                *out = CS(c)->slice_start_ps;
                return 0;
            }
            c = NULL;
        }
        if (!c || c == Py_None) {
            if (s && PyObject_TypeCheck(s, &SchedType)) {
                *out = ((SchedObject *)s)->now;
                return 0;
            }
        }
    }
    PyObject *cpu = PyObject_GetAttr(machine, str_cpu);
    if (!cpu)
        return -1;
    if (cpu != Py_None) {
        int ex = get_truth(cpu, str_executing);
        if (ex) {
            int rc = ex < 0 ? -1 : get_i64(cpu, str_slice_start_ps, out);
            Py_DECREF(cpu);
            return rc;
        }
    }
    Py_DECREF(cpu);
    PyObject *s = PyObject_GetAttr(machine, str_scheduler);
    if (!s)
        return -1;
    int rc = 0;
    if (PyObject_TypeCheck(s, &SchedType))
        *out = ((SchedObject *)s)->now;
    else
        rc = get_i64(s, str_now, out);
    Py_DECREF(s);
    return rc;
}

/* machine.now() */
/* The last machine type found to keep Machine.now, at its type version (tp_version_tag changes
 * when the class or a base is modified, e.g. `now` replaced; tags are never reused, so a pointer
 * without a reference is safe): the units' clock reads skip the method lookup. */
static PyTypeObject *mn_type;
static unsigned int mn_tag;
static int mn_state;                 /* ... and whether it is a MachineState (plain_machine_now) */

static int machine_now(PyObject *machine, int64_t *out)
{
    PyTypeObject *t = Py_TYPE(machine);
    if (t == mn_type && mn_tag && t->tp_version_tag == mn_tag)
        return plain_machine_now(machine, mn_state, out);
    if (machine_now_fn && _PyType_Lookup(t, str_now) == machine_now_fn) {
        mn_type = t;                             /* _PyType_Lookup gave the type a valid tag */
        mn_tag = t->tp_version_tag;
        mn_state = PyObject_TypeCheck(machine, &MachineStateType);
        return plain_machine_now(machine, mn_state, out);
    }
    PyObject *r = PyObject_VectorcallMethod(str_now, &machine, 1, NULL);
    if (!r)
        return -1;
    int rc = as_i64(r, out);
    Py_DECREF(r);
    return rc;
}

static PyObject *mod_machine_now(PyObject *Py_UNUSED(m), PyObject *machine)
{
    int64_t t;
    return machine_now(machine, &t) < 0 ? NULL : PyLong_FromLongLong(t);
}

/* -- unicorn ---------------------------------------------------------------------------------------- */

static PyObject *mod_bind_unicorn(PyObject *Py_UNUSED(m), PyObject *arg)
{
    void *handle = PyLong_AsVoidPtr(arg);
    if (!handle && PyErr_Occurred())
        return NULL;
    char why[256];
    if (duohil_uc_bind(handle, why, sizeof why) < 0) {   /* refused: a good earlier binding stays */
        PyErr_SetString(PyExc_ImportError, why);
        return NULL;
    }
    uc_bound = 1;
    Py_RETURN_NONE;
}

static int need_uc(void)
{
    if (!uc_bound) {
        PyErr_SetString(PyExc_RuntimeError, "the native core is not bound to unicorn (bind_unicorn)");
        return -1;
    }
    return 0;
}

/* emu_start(uch, begin, until, timeout, count) -> unicorn error code (0: OK).
 * Runs with the GIL held: Python hooks on the engine run inside it. */
static PyObject *mod_emu_start(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5)
        return PyErr_Format(PyExc_TypeError, "emu_start(uch, begin, until, timeout, count)");
    if (need_uc() < 0)
        return NULL;
    void *uch = PyLong_AsVoidPtr(args[0]);
    unsigned long long v[4];
    for (int i = 0; i < 4; i++) {
        v[i] = PyLong_AsUnsignedLongLong(args[i + 1]);
        if (v[i] == (unsigned long long)-1 && PyErr_Occurred())
            return NULL;
    }
    if (!uch && PyErr_Occurred())
        return NULL;
    uc_err err = dh_emu_start((uc_engine *)uch, v[0], v[1], v[2], (size_t)v[3]);
    return PyLong_FromLong((long)err);
}

/* bench_slices(uch, begin, n, count) -> n slices of `count` instructions from `begin`, all from C:
 * the fixed cost of a slice start/stop without Python around it. Returns the last error code. */
static PyObject *mod_bench_slices(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4)
        return PyErr_Format(PyExc_TypeError, "bench_slices(uch, begin, n, count)");
    if (need_uc() < 0)
        return NULL;
    void *uch = PyLong_AsVoidPtr(args[0]);
    unsigned long long begin = PyLong_AsUnsignedLongLong(args[1]);
    long long n = PyLong_AsLongLong(args[2]);
    long long count = PyLong_AsLongLong(args[3]);
    if (PyErr_Occurred())
        return NULL;
    uc_err err = UC_ERR_OK;
    for (long long i = 0; i < n && err == UC_ERR_OK; i++)
        err = dh_emu_start((uc_engine *)uch, begin, 0xFFFFFFFFull, 0, (size_t)count);
    return PyLong_FromLong((long)err);
}

static PyObject *mod_heap_selftest(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2)
        return PyErr_Format(PyExc_TypeError, "heap_selftest(n, seed)");
    Py_ssize_t n = PyLong_AsSsize_t(args[0]);
    unsigned long long seed = PyLong_AsUnsignedLongLong(args[1]);
    if (PyErr_Occurred())
        return NULL;
    int rc = dh_selftest((size_t)n, seed);
    if (rc < 0)
        return PyErr_NoMemory();
    return PyBool_FromLong(rc == 0);
}

static PyObject *mod_built_for(PyObject *Py_UNUSED(m), PyObject *Py_UNUSED(ignored))
{
    return PyUnicode_FromString(duohil_uc_built_for());
}

/* -- CortexM: the Cortex-M7 exception path (cortexm.c) for one core ---------------------------- */

typedef struct {
    PyObject_HEAD
    dh_cm cm;
    /* the UC_HOOK_INTR hook registered from C (hook_intr): the Uc object (its _hook_exception
     * carries an exception out of the hook, as the binding's own wrapper does), the exception
     * return to call for intno 8 and the Python handler for every other intno */
    PyObject *uc_obj, *on_return, *on_intr;
    uc_hook intr_hook;
    int hooked;
    /* [nvicc] the exception return decided in C (fast_return): the NVIC's state, the CPU, its
     * _exc_return_rest for the rare cases, the MPU (suspended?), SCR (SLEEPONEXIT), machine.now */
    PyObject *fr_nvic, *fr_cpu, *fr_rest, *fr_scr, *fr_now;
    /* [nvicc] take_interrupts and the plain entry in C (fast_entry, take): the Python Nvic (vtor,
     * _st_resume), the full Python entry for the rare cases and its second half (_enter_after) */
    PyObject *fe_nvic, *fe_enter, *fe_after;
    long storm_entries, storm_rate_entries;      /* limits.py's STORM_ENTRIES, STORM_RATE_ENTRIES */
    /* [entryc] the FPCAR register (an FP frame's entry sets it) and the address ranges the MPU
     * leaves without write access (nvic.py's Mpu pushes them whenever it recomputes its segments):
     * an entry whose frame misses them all is plain, whatever the MPU's other regions say */
    PyObject *fe_fpcar;
    uint64_t (*wd)[2];
    size_t wd_n;
    /* [m7slice] the slice glue (run_slice): the CPU it runs, the WFI sites found so far (Python
     * ints in cortexm.py before: pc - 2 or pc - 4, kept signed) and the NVIC's IRQ count */
    PyObject *ms_cpu;
    int64_t *wfi;
    size_t wfi_n, wfi_cap;
    int n_irq;
    PyObject *vtlb;                        /* [vtlb] the core's _core.Vtlb, or NULL */
} CortexMObject;

/* [nvicc] defined with the Nvic binding below */
static PyObject *cm_fast_return(CortexMObject *c);
static PyObject *cm_set_fast_return(CortexMObject *c, PyObject *const *args, Py_ssize_t nargs);
static PyObject *cm_set_fast_entry(CortexMObject *c, PyObject *const *args, Py_ssize_t nargs);
static PyObject *cm_take(CortexMObject *c, PyObject *Py_UNUSED(ignored));
static PyObject *cm_set_write_denied(CortexMObject *c, PyObject *ranges);
static PyObject *cm_interrupt_pending(CortexMObject *c, PyObject *Py_UNUSED(ignored));
/* [m7slice] defined after the Nvic binding */
static PyObject *cm_bind_slice(CortexMObject *c, PyObject *cpu);
static PyObject *cm_run_slice(CortexMObject *c, PyObject *arg);
static PyObject *cm_clear_wfi(CortexMObject *c, PyObject *Py_UNUSED(ignored));
static PyObject *cm_wfi_sites(CortexMObject *c, PyObject *Py_UNUSED(ignored));
static PyObject *cm_bind_vtlb(CortexMObject *c, PyObject *v);                       /* [vtlb] */

static PyObject *cm_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    PyObject *h;
    static char *kwlist[] = {"uch", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O:CortexM", kwlist, &h))
        return NULL;
    if (need_uc() < 0)
        return NULL;
    void *uch = PyLong_AsVoidPtr(h);
    if (!uch)
        return PyErr_Occurred() ? NULL : PyErr_Format(PyExc_ValueError, "CortexM: null uc handle");
    CortexMObject *c = (CortexMObject *)type->tp_alloc(type, 0);
    if (c)
        c->cm.uc = (uc_engine *)uch;
    return (PyObject *)c;
}

static int cm_traverse(CortexMObject *c, visitproc visit, void *arg)
{
    Py_VISIT(c->uc_obj);
    Py_VISIT(c->on_return);
    Py_VISIT(c->on_intr);
    Py_VISIT(c->fr_nvic);                  /* [nvicc] */
    Py_VISIT(c->fr_cpu);
    Py_VISIT(c->fr_rest);
    Py_VISIT(c->fr_scr);
    Py_VISIT(c->fr_now);
    Py_VISIT(c->fe_nvic);
    Py_VISIT(c->fe_enter);
    Py_VISIT(c->fe_after);
    Py_VISIT(c->fe_fpcar);
    Py_VISIT(c->ms_cpu);                   /* [m7slice] */
    Py_VISIT(c->vtlb);                     /* [vtlb] */
    return 0;
}

/* Whether the Uc's engine is still open: the binding closes it from a weakref.finalize, which
 * the garbage collector may run before it clears us (a cycle through the CPU object). */
static int engine_open(PyObject *uc_obj)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    int open = 0;
    PyObject *f = PyObject_GetAttrString(uc_obj, "_Uc__finalizer");
    if (f) {
        PyObject *alive = PyObject_GetAttrString(f, "alive");
        open = alive && PyObject_IsTrue(alive) == 1;
        Py_XDECREF(alive);
        Py_DECREF(f);
    }
    PyErr_Clear();
    PyErr_Restore(type, value, tb);
    return open;
}

static int cm_clear(CortexMObject *c)
{
    /* an open engine may outlive us: never leave it a hook into freed memory */
    if (c->hooked && c->uc_obj && engine_open(c->uc_obj))
        UC.hook_del(c->cm.uc, c->intr_hook);
    c->hooked = 0;
    Py_CLEAR(c->uc_obj);
    Py_CLEAR(c->on_return);
    Py_CLEAR(c->on_intr);
    Py_CLEAR(c->fr_nvic);                  /* [nvicc] */
    Py_CLEAR(c->fr_cpu);
    Py_CLEAR(c->fr_rest);
    Py_CLEAR(c->fr_scr);
    Py_CLEAR(c->fr_now);
    Py_CLEAR(c->fe_nvic);
    Py_CLEAR(c->fe_enter);
    Py_CLEAR(c->fe_after);
    Py_CLEAR(c->fe_fpcar);
    Py_CLEAR(c->ms_cpu);                   /* [m7slice] */
    Py_CLEAR(c->vtlb);                     /* [vtlb] */
    return 0;
}

static void cm_dealloc(CortexMObject *c)
{
    PyObject_GC_UnTrack(c);
    cm_clear(c);
    PyMem_Free(c->wd);
    c->wd = NULL;
    PyMem_Free(c->wfi);                    /* [m7slice] */
    c->wfi = NULL;
    Py_TYPE(c)->tp_free((PyObject *)c);
}

/* UC_HOOK_INTR: an exception return (intno 8) goes straight to on_return(), anything else to
 * on_intr(uc, intno, None); an exception either raises is kept in uc._hook_exception (the first
 * one wins) and stops the engine, as the unicorn binding's callback wrapper does. */
static void cm_intr_cb(uc_engine *uc, uint32_t intno, void *ud)
{
    CortexMObject *c = (CortexMObject *)ud;
    PyGILState_STATE g = PyGILState_UNLOCKED;
    int took = gil_enter(uc, &g);                                              /* [gilrun] */
    PyObject *r;
    if (intno == 8) {
        r = c->fr_nvic ? cm_fast_return(c) : PyObject_CallNoArgs(c->on_return);   /* [nvicc] */
    } else {
        PyObject *n = PyLong_FromUnsignedLong(intno);
        r = n ? PyObject_CallFunctionObjArgs(c->on_intr, c->uc_obj, n, Py_None, NULL) : NULL;
        Py_XDECREF(n);
    }
    if (r) {
        Py_DECREF(r);
    } else {
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        PyErr_NormalizeException(&type, &value, &tb);
        if (tb && value)
            PyException_SetTraceback(value, tb);
        PyObject *prev = PyObject_GetAttrString(c->uc_obj, "_hook_exception");
        if (!prev || prev == Py_None) {
            PyErr_Clear();
            if (PyObject_SetAttrString(c->uc_obj, "_hook_exception", value ? value : Py_None) < 0)
                PyErr_WriteUnraisable(c->uc_obj);
        }
        Py_XDECREF(prev);
        Py_XDECREF(type);
        Py_XDECREF(value);
        Py_XDECREF(tb);
        UC.emu_stop(uc);
    }
    gil_leave(took, g);
}

/* hook_intr(uc, on_return, on_intr): register the C UC_HOOK_INTR hook (once). */
static PyObject *cm_hook_intr(CortexMObject *c, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3)
        return PyErr_Format(PyExc_TypeError, "hook_intr(uc, on_return, on_intr)");
    if (c->hooked)
        return PyErr_Format(PyExc_RuntimeError, "hook_intr: already registered");
    if (!PyCallable_Check(args[1]) || !PyCallable_Check(args[2]))
        return PyErr_Format(PyExc_TypeError, "hook_intr: on_return and on_intr must be callable");
    uc_err err = UC.hook_add(c->cm.uc, &c->intr_hook, UC_HOOK_INTR, (void *)cm_intr_cb, c, 1, 0);
    if (err != UC_ERR_OK)
        return PyErr_Format(PyExc_RuntimeError, "unicorn: %s", UC.strerror(err));
    c->hooked = 1;
    Py_INCREF(args[0]);
    Py_INCREF(args[1]);
    Py_INCREF(args[2]);
    Py_XSETREF(c->uc_obj, args[0]);
    Py_XSETREF(c->on_return, args[1]);
    Py_XSETREF(c->on_intr, args[2]);
    Py_RETURN_NONE;
}

static PyObject *cm_fail(CortexMObject *c, int rc)
{
    if (rc == CM_ERR_UC)
        return PyErr_Format(PyExc_RuntimeError, "unicorn: %s", UC.strerror(c->cm.uc_err));
    return PyErr_Format(PyExc_SystemError, "cortexm: unexpected code %d", rc);
}

static PyObject *u32_list(const uint32_t *v, int n)
{
    PyObject *l = PyList_New(n);
    if (!l)
        return NULL;
    for (int i = 0; i < n; i++) {
        PyObject *x = PyLong_FromUnsignedLong(v[i]);
        if (!x) {
            Py_DECREF(l);
            return NULL;
        }
        PyList_SET_ITEM(l, i, x);
    }
    return l;
}

static int arg_u32(PyObject *o, uint32_t *out)
{
    unsigned long long v = PyLong_AsUnsignedLongLongMask(o);
    if (v == (unsigned long long)-1 && PyErr_Occurred())
        return -1;
    *out = (uint32_t)v;
    return 0;
}

static int arg_regs(PyObject *o, uint32_t regs[CM_ENTRY_N])
{
    PyObject *seq = PySequence_Fast(o, "entry registers: a sequence of 10 ints");
    if (!seq)
        return -1;
    int rc = 0;
    if (PySequence_Fast_GET_SIZE(seq) != CM_ENTRY_N) {
        PyErr_SetString(PyExc_ValueError, "entry registers: a sequence of 10 ints");
        rc = -1;
    }
    for (int i = 0; !rc && i < CM_ENTRY_N; i++)
        rc = arg_u32(PySequence_Fast_GET_ITEM(seq, i), &regs[i]);
    Py_DECREF(seq);
    return rc;
}

static int cm_args(PyObject *const *args, Py_ssize_t nargs, Py_ssize_t want, const char *usage)
{
    if (nargs != want) {
        PyErr_Format(PyExc_TypeError, "%s", usage);
        return -1;
    }
    return 0;
}

static PyObject *cm_read_entry(CortexMObject *c, PyObject *Py_UNUSED(ignored))
{
    uint32_t r[CM_ENTRY_N];
    int rc = dh_cm_read_entry(&c->cm, r);
    return rc ? cm_fail(c, rc) : u32_list(r, CM_ENTRY_N);
}

static PyObject *cm_read_return(CortexMObject *c, PyObject *Py_UNUSED(ignored))
{
    uint32_t r[CM_RET_N];
    int rc = dh_cm_read_return(&c->cm, r);
    return rc ? cm_fail(c, rc) : u32_list(r, CM_RET_N);
}

static PyObject *cm_read_masks(CortexMObject *c, PyObject *Py_UNUSED(ignored))
{
    uint32_t m[3];
    int rc = dh_cm_read_masks(&c->cm, m);
    return rc ? cm_fail(c, rc) : u32_list(m, 3);
}

/* stack_enter(regs, pc, exc, vtor, stack) -> vector, -1 (stacking failed, nothing done) or -2
 * (vector unreadable, frame written if asked, no register written). */
static PyObject *cm_stack_enter(CortexMObject *c, PyObject *const *args, Py_ssize_t nargs)
{
    uint32_t regs[CM_ENTRY_N], pc, exc, vtor, vec = 0;
    if (cm_args(args, nargs, 5, "stack_enter(regs, pc, exc, vtor, stack)") < 0 || arg_regs(args[0], regs) < 0
        || arg_u32(args[1], &pc) < 0 || arg_u32(args[2], &exc) < 0 || arg_u32(args[3], &vtor) < 0)
        return NULL;
    int stack = PyObject_IsTrue(args[4]);
    if (stack < 0)
        return NULL;
    int rc = stack ? dh_cm_stack(&c->cm, regs, pc) : 0;
    if (!rc)
        rc = dh_cm_enter(&c->cm, regs, exc, vtor, &vec);
    if (rc == CM_ERR_STACK || rc == CM_ERR_VECTOR)
        return PyLong_FromLong(rc);
    return rc ? cm_fail(c, rc) : PyLong_FromUnsignedLong(vec);
}

/* tail_chain(exc, exc_return, vtor, clear_faultmask) -> vector or -2 (nothing written). */
static PyObject *cm_tail_chain(CortexMObject *c, PyObject *const *args, Py_ssize_t nargs)
{
    uint32_t exc, ret, vtor, vec = 0;
    if (cm_args(args, nargs, 4, "tail_chain(exc, exc_return, vtor, clear_faultmask)") < 0
        || arg_u32(args[0], &exc) < 0 || arg_u32(args[1], &ret) < 0 || arg_u32(args[2], &vtor) < 0)
        return NULL;
    int fm = PyObject_IsTrue(args[3]);
    if (fm < 0)
        return NULL;
    int rc = dh_cm_tail_chain(&c->cm, exc, ret, vtor, fm, &vec);
    if (rc == CM_ERR_VECTOR)
        return PyLong_FromLong(rc);
    return rc ? cm_fail(c, rc) : PyLong_FromUnsignedLong(vec);
}

/* unstack(sp, exc_return, control, clear_faultmask) -> [r0, r1, r2, r3, r12, lr, pc, new_sp,
 * new_xpsr], None when the frame could not be read or -5 (CM_ERR_INVPC) when its IPSR disagrees
 * with the mode returned to (nothing written). */
static PyObject *cm_unstack(CortexMObject *c, PyObject *const *args, Py_ssize_t nargs)
{
    uint32_t sp, ret, control, out[CM_UN_N];
    if (cm_args(args, nargs, 4, "unstack(sp, exc_return, control, clear_faultmask)") < 0
        || arg_u32(args[0], &sp) < 0 || arg_u32(args[1], &ret) < 0 || arg_u32(args[2], &control) < 0)
        return NULL;
    int fm = PyObject_IsTrue(args[3]);
    if (fm < 0)
        return NULL;
    int rc = dh_cm_unstack(&c->cm, sp, ret, control, fm, out);
    if (rc == CM_ERR_UNSTACK)
        Py_RETURN_NONE;
    if (rc == CM_ERR_INVPC)
        return PyLong_FromLong(rc);
    return rc ? cm_fail(c, rc) : u32_list(out, CM_UN_N);
}

/* pc() -> the core's PC now (Duo samples it every 5 ms for the diagnosis; the RegBatch's ctypes
 * call took ~3-5 us) */
static PyObject *cm_pc(CortexMObject *c, PyObject *Py_UNUSED(ignored))
{
    uint32_t v = 0;
    uc_err err = UC.reg_read(c->cm.uc, UC_ARM_REG_PC, &v);
    if (err != UC_ERR_OK) {
        c->cm.uc_err = err;
        return cm_fail(c, CM_ERR_UC);
    }
    return PyLong_FromUnsignedLong(v);
}

static PyMethodDef cm_methods[] = {
    {"pc", (PyCFunction)cm_pc, METH_NOARGS, "pc() -> the core's PC"},
    {"read_entry", (PyCFunction)cm_read_entry, METH_NOARGS,
     "read_entry() -> [r0, r1, r2, r3, r12, lr, pc, xpsr, sp, control]"},
    {"read_masks", (PyCFunction)cm_read_masks, METH_NOARGS,
     "read_masks() -> [primask, basepri, faultmask] as the core holds them (unprivileged threads "
     "included: unicorn's MRS-style read gives them 0 there)"},
    {"read_return", (PyCFunction)cm_read_return, METH_NOARGS,
     "read_return() -> [pc, msp, psp, control, xpsr, primask, basepri, faultmask]"},
    {"stack_enter", (PyCFunction)(void (*)(void))cm_stack_enter, METH_FASTCALL,
     "stack_enter(regs, pc, exc, vtor, stack) -> vector, -1 (stacking failed) or -2 (no vector)"},
    {"tail_chain", (PyCFunction)(void (*)(void))cm_tail_chain, METH_FASTCALL,
     "tail_chain(exc, exc_return, vtor, clear_faultmask) -> vector or -2"},
    {"unstack", (PyCFunction)(void (*)(void))cm_unstack, METH_FASTCALL,
     "unstack(sp, exc_return, control, clear_faultmask) -> [r0..lr, pc, sp, xpsr], None or -5"},
    {"hook_intr", (PyCFunction)(void (*)(void))cm_hook_intr, METH_FASTCALL,
     "hook_intr(uc, on_return, on_intr): UC_HOOK_INTR in C; intno 8 calls on_return() directly"},
    {"fast_return", (PyCFunction)(void (*)(void))cm_set_fast_return, METH_FASTCALL,   /* [nvicc] */
     "fast_return(nvic, cpu, rest, scr, now): intno 8 decides the plain exception return in C "
     "(MPU_CTRL and the MPU's bypass are the Nvic's members)"},
    {"fast_entry", (PyCFunction)(void (*)(void))cm_set_fast_entry, METH_FASTCALL,    /* [nvicc] */
     "fast_entry(nvic_py, enter, after, storm_entries, storm_rate_entries, fpcar): what take() needs"},
    {"interrupt_pending", (PyCFunction)cm_interrupt_pending, METH_NOARGS,           /* [entryc] */
     "interrupt_pending() -> cortexm.py's interrupt_pending() (the WFI wake rule), in C"},
    {"set_write_denied", (PyCFunction)cm_set_write_denied, METH_O,                  /* [entryc] */
     "set_write_denied([(start, end), ...]): the ranges the MPU leaves without write access"},
    {"take", (PyCFunction)cm_take, METH_NOARGS,                                      /* [nvicc] */
     "take() -> cortexm.py's take_interrupts(): plain entries in C, the others by enter(exc)"},
    {"bind_slice", (PyCFunction)cm_bind_slice, METH_O,                            /* [m7slice] */
     "bind_slice(cpu): the CortexM7Cpu whose slices run_slice runs"},
    {"run_slice", (PyCFunction)cm_run_slice, METH_O,                              /* [m7slice] */
     "run_slice(count) -> cortexm.py's _run_slice: one slice and its end, in C"},
    {"clear_wfi", (PyCFunction)cm_clear_wfi, METH_NOARGS,                         /* [m7slice] */
     "clear_wfi(): forget the WFI sites found so far (the image may have changed)"},
    {"bind_vtlb", (PyCFunction)cm_bind_vtlb, METH_O,                              /* [vtlb] */
     "bind_vtlb(vtlb): the core's _core.Vtlb, whose refused fetches a slice turns into _mem_fault."},
    {"wfi_sites", (PyCFunction)cm_wfi_sites, METH_NOARGS,                         /* [m7slice] */
     "wfi_sites() -> sorted list of the WFI addresses found so far"},
    {NULL},
};

static PyTypeObject CortexMType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "duohil.engines.builtin.native._core.CortexM",
    .tp_basicsize = sizeof(CortexMObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = (traverseproc)cm_traverse,
    .tp_clear = (inquiry)cm_clear,
    .tp_dealloc = (destructor)cm_dealloc,
    .tp_doc = "CortexM(uch): one Cortex-M7 core's exception entry, tail-chain and return in C.",
    .tp_new = cm_new,
    .tp_methods = cm_methods,
};

/* -- RiscV: the RV32 trap entry (riscv.c) for one core --------------------------------------------
 * (rvtrap block: the RV32 peer's register access and trap entry; kept apart from the M7's) */

typedef struct {
    PyObject_HEAD
    dh_rv rv;
    /* [m7slice] the slice glue (run_slice): the CPU and its Uc, the memory regions as at the first
     * slice after reset (sorted [begin, end] pairs; n < 0: not loaded), and the "word before pc is
     * WFI" answers by pc (an open-addressing table: keys pc + 1, 0 empty; the code is static) */
    PyObject *rs_cpu, *rs_uc;
    uint64_t (*spans)[2];
    Py_ssize_t spans_n;
    uint64_t *wfi_keys;
    uint8_t *wfi_vals;
    size_t wfi_n, wfi_cap;
} RiscVObject;

/* [m7slice] defined after the CortexM slice */
static PyObject *rv_bind_slice(RiscVObject *r, PyObject *const *args, Py_ssize_t nargs);
static PyObject *rv_run_slice(RiscVObject *r, PyObject *arg);
static PyObject *rv_set_spans(RiscVObject *r, PyObject *arg);
static PyObject *rv_forget(RiscVObject *r, PyObject *Py_UNUSED(ignored));
static PyObject *rv_wfi_after(RiscVObject *r, PyObject *arg);
static PyObject *rv_interrupt_pending(RiscVObject *r, PyObject *Py_UNUSED(ignored));
static PyObject *rv_take_interrupts(RiscVObject *r, PyObject *Py_UNUSED(ignored));      /* [rvtake] */
static PyObject *rv_set_input(RiscVObject *r, PyObject *const *args, Py_ssize_t nargs); /* [cpustate] */
static PyObject *rv_enter_interrupt(RiscVObject *r, PyObject *const *args, Py_ssize_t nargs);
static int rv_traverse(RiscVObject *r, visitproc visit, void *arg);
static int rv_clear(RiscVObject *r);
static void rv_dealloc(RiscVObject *r);

static PyObject *rv_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    PyObject *h;
    static char *kwlist[] = {"uch", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O:RiscV", kwlist, &h))
        return NULL;
    if (need_uc() < 0)
        return NULL;
    void *uch = PyLong_AsVoidPtr(h);
    if (!uch)
        return PyErr_Occurred() ? NULL : PyErr_Format(PyExc_ValueError, "RiscV: null uc handle");
    RiscVObject *r = (RiscVObject *)type->tp_alloc(type, 0);
    if (r) {
        r->rv.uc = (uc_engine *)uch;
        r->spans_n = -1;
    }
    return (PyObject *)r;
}

static PyObject *rv_fail(RiscVObject *r)
{
    return PyErr_Format(PyExc_RuntimeError, "unicorn: %s", UC.strerror(r->rv.uc_err));
}

/* rd(reg) -> the register's value (as riscv.py's ctypes rd: zero-extended, unmasked) */
static PyObject *rv_rd(RiscVObject *r, PyObject *arg)
{
    long reg = PyLong_AsLong(arg);
    if (reg == -1 && PyErr_Occurred())
        return NULL;
    uint64_t v;
    if (dh_rv_read(&r->rv, (int)reg, &v) < 0)
        return rv_fail(r);
    return PyLong_FromUnsignedLongLong(v);
}

/* wr(reg, value): the low 32 bits of value */
static PyObject *rv_wr(RiscVObject *r, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2)
        return PyErr_Format(PyExc_TypeError, "wr(reg, value)");
    long reg = PyLong_AsLong(args[0]);
    if (reg == -1 && PyErr_Occurred())
        return NULL;
    unsigned long long v = PyLong_AsUnsignedLongLongMask(args[1]);
    if (v == (unsigned long long)-1 && PyErr_Occurred())
        return NULL;
    if (dh_rv_write(&r->rv, (int)reg, v) < 0)
        return rv_fail(r);
    Py_RETURN_NONE;
}

/* read() -> [mie, priv, mstatus, pc, mtvec] */
static PyObject *rv_read(RiscVObject *r, PyObject *Py_UNUSED(ignored))
{
    uint64_t st[RV_ST_N];
    if (dh_rv_read_state(&r->rv, st) < 0)
        return rv_fail(r);
    PyObject *l = PyList_New(RV_ST_N);
    if (!l)
        return NULL;
    for (int i = 0; i < RV_ST_N; i++) {
        PyObject *x = PyLong_FromUnsignedLongLong(st[i]);
        if (!x) {
            Py_DECREF(l);
            return NULL;
        }
        PyList_SET_ITEM(l, i, x);
    }
    return l;
}

/* enter(cause, epc, tval, priv, mstatus, mtvec, in_hook) -> the pc it went to */
static PyObject *rv_enter(RiscVObject *r, PyObject *const *args, Py_ssize_t nargs)
{
    uint32_t v[6], target;
    if (nargs != 7)
        return PyErr_Format(PyExc_TypeError, "enter(cause, epc, tval, priv, mstatus, mtvec, in_hook)");
    for (int i = 0; i < 6; i++)
        if (arg_u32(args[i], &v[i]) < 0)
            return NULL;
    int in_hook = PyObject_IsTrue(args[6]);
    if (in_hook < 0)
        return NULL;
    if (dh_rv_enter(&r->rv, v[0], v[1], v[2], v[3], v[4], v[5], in_hook, &target) < 0)
        return rv_fail(r);
    return PyLong_FromUnsignedLong(target);
}

static PyMethodDef rv_methods[] = {
    {"rd", (PyCFunction)rv_rd, METH_O, "rd(reg) -> value"},
    {"wr", (PyCFunction)(void (*)(void))rv_wr, METH_FASTCALL, "wr(reg, value): low 32 bits"},
    {"read", (PyCFunction)rv_read, METH_NOARGS, "read() -> [mie, priv, mstatus, pc, mtvec]"},
    {"enter", (PyCFunction)(void (*)(void))rv_enter, METH_FASTCALL,
     "enter(cause, epc, tval, priv, mstatus, mtvec, in_hook) -> target pc: the trap-entry writes"},
    {"bind_slice", (PyCFunction)(void (*)(void))rv_bind_slice, METH_FASTCALL,      /* [m7slice] */
     "bind_slice(cpu, uc): the RiscVCpu whose slices run_slice runs"},
    {"run_slice", (PyCFunction)rv_run_slice, METH_O,                              /* [m7slice] */
     "run_slice(count) -> riscv.py's _run_slice: one slice and its end, in C"},
    {"set_spans", (PyCFunction)rv_set_spans, METH_O,                              /* [m7slice] */
     "set_spans([(begin, end), ...]): unicorn's regions (sorted), for the unmapped-fetch test"},
    {"forget", (PyCFunction)rv_forget, METH_NOARGS,                               /* [m7slice] */
     "forget(): at reset, the regions and the WFI answers are found again"},
    {"wfi_after", (PyCFunction)rv_wfi_after, METH_O,                              /* [m7slice] */
     "wfi_after(pc) -> None (not asked yet), or whether the word before pc is WFI"},
    {"set_input", (PyCFunction)(void (*)(void))rv_set_input, METH_FASTCALL,       /* [cpustate] */
     "set_input(line, level): riscv.py's interrupt input (the mip shadow; a line raised by the "
     "firmware's own MMIO write that can be taken stops the slice at that store)."},
    {"interrupt_pending", (PyCFunction)rv_interrupt_pending, METH_NOARGS,         /* [m7slice] */
     "interrupt_pending() -> riscv.py's WFI wake rule: mip & mie (mstatus.MIE does not matter)"},
    {"take_interrupts", (PyCFunction)rv_take_interrupts, METH_NOARGS,             /* [rvtake] */
     "take_interrupts() -> the CPU's take_interrupts(): an interrupt pending in mip & mie and "
     "takeable (below M or mstatus.MIE) is entered, MEI > MSI > MTI; True if one was"},
    {"enter_interrupt", (PyCFunction)(void (*)(void))rv_enter_interrupt, METH_FASTCALL, /* [rvtake] */
     "enter_interrupt(pending, epc, priv, mstatus, mtvec): the interrupt entry (the cause picked "
     "from pending, nonzero) with interrupts_taken, _state_cache, _next_pc and last_trap"},
    {NULL},
};

static PyTypeObject RiscVType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "duohil.engines.builtin.native._core.RiscV",
    .tp_basicsize = sizeof(RiscVObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = (traverseproc)rv_traverse,
    .tp_clear = (inquiry)rv_clear,
    .tp_dealloc = (destructor)rv_dealloc,
    .tp_doc = "RiscV(uch): one RV32 core's register access and machine-mode trap entry in C.",
    .tp_new = rv_new,
    .tp_methods = rv_methods,
};

/* -- end of the RiscV block ----------------------------------------------------------------------- */

/* -- Clint: the RISC-V CLINT's timer state (clint.c) for one CLINT ----------------------------------
 * (rvtrap block: mtime/mtimecmp, the MTIP decision, the map; clint.py keeps signals and events) */

typedef struct {
    PyObject_HEAD
    dh_clint cl;
    /* [cbus] the register map in C (bind): the bus port, the machine (now), the scheduler, the
     * MSIP and MTIP signals, the list of pending MTIP events (clint.py's _events), the event's
     * callable and names, scheduler.at, the register bank's read/write for unmodelled offsets */
    dh_port port;
    PyObject *machine, *sched, *msip, *mtip, *events, *fire, *names, *at, *fb_read, *fb_write;
} ClintObject;

static PyObject *str_level, *str_set, *str_cancel, *str_time, *str_name_kw;

static PyObject *clint_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    long long f, div;
    int harts;
    static char *kwlist[] = {"frequency", "divider", "harts", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "LLi:Clint", kwlist, &f, &div, &harts))
        return NULL;
    if (f <= 0 || div <= 0 || harts < 0)
        return PyErr_Format(PyExc_ValueError, "Clint: frequency and divider must be > 0, harts >= 0");
    ClintObject *c = (ClintObject *)type->tp_alloc(type, 0);
    if (c && dh_clint_init(&c->cl, f, div, harts) < 0) {
        Py_DECREF(c);
        return PyErr_NoMemory();
    }
    return (PyObject *)c;
}

static int clint_traverse(ClintObject *c, visitproc visit, void *arg)
{
    Py_VISIT(c->machine);
    Py_VISIT(c->sched);
    Py_VISIT(c->msip);
    Py_VISIT(c->mtip);
    Py_VISIT(c->events);
    Py_VISIT(c->fire);
    Py_VISIT(c->names);
    Py_VISIT(c->at);
    Py_VISIT(c->fb_read);
    Py_VISIT(c->fb_write);
    return 0;
}

static int clint_clear(ClintObject *c)
{
    Py_CLEAR(c->machine);
    Py_CLEAR(c->sched);
    Py_CLEAR(c->msip);
    Py_CLEAR(c->mtip);
    Py_CLEAR(c->events);
    Py_CLEAR(c->fire);
    Py_CLEAR(c->names);
    Py_CLEAR(c->at);
    Py_CLEAR(c->fb_read);
    Py_CLEAR(c->fb_write);
    return 0;
}

static void clint_dealloc(ClintObject *c)
{
    PyObject_GC_UnTrack(c);
    clint_clear(c);
    dh_clint_free(&c->cl);
    Py_TYPE(c)->tp_free((PyObject *)c);
}

static int clint_i64(PyObject *o, int64_t *out)
{
    long long v = PyLong_AsLongLong(o);
    if (v == -1 && PyErr_Occurred())
        return -1;
    *out = v;
    return 0;
}

static int clint_hart(ClintObject *c, PyObject *o, int *n)
{
    long v = PyLong_AsLong(o);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (v < 0 || v >= c->cl.harts) {
        PyErr_Format(PyExc_IndexError, "Clint: hart %ld out of range", v);
        return -1;
    }
    *n = (int)v;
    return 0;
}

/* mtime(now) */
static PyObject *clint_mtime(ClintObject *c, PyObject *arg)
{
    int64_t now;
    if (clint_i64(arg, &now) < 0)
        return NULL;
    return PyLong_FromUnsignedLongLong(dh_clint_mtime(&c->cl, now));
}

/* cmp(n) -> hart n's mtimecmp */
static PyObject *clint_cmp(ClintObject *c, PyObject *arg)
{
    int n;
    if (clint_hart(c, arg, &n) < 0)
        return NULL;
    return PyLong_FromUnsignedLongLong(c->cl.mtimecmp[n]);
}

/* reset(now) */
static PyObject *clint_reset(ClintObject *c, PyObject *arg)
{
    int64_t now;
    if (clint_i64(arg, &now) < 0)
        return NULL;
    dh_clint_reset(&c->cl, now);
    Py_RETURN_NONE;
}

static PyObject *clint_get_offset(ClintObject *c, void *Py_UNUSED(x))
{
    /* |offset| < 2**65: as a Python int via two halves */
    __int128 o = c->cl.offset;
    PyObject *hi = PyLong_FromLongLong((long long)(o >> 32));
    PyObject *lo = PyLong_FromUnsignedLongLong((unsigned long long)(o & 0xFFFFFFFFu));
    PyObject *sh = PyLong_FromLong(32), *r = NULL;
    if (hi && lo && sh) {
        PyObject *h2 = PyNumber_Lshift(hi, sh);
        if (h2) {
            r = PyNumber_Or(h2, lo);
            Py_DECREF(h2);
        }
    }
    Py_XDECREF(hi);
    Py_XDECREF(lo);
    Py_XDECREF(sh);
    return r;
}

/* -- [cbus] the CLINT's register map in C, served to the bus through _native_mmio ------------- */

/* machine.now(): the accessing CPU's slice start during a slice, else the scheduler's time */
static int clint_now(ClintObject *c, int64_t *now)
{
    if (!c->machine) {
        PyErr_SetString(PyExc_RuntimeError, "Clint: bind() first");
        return -1;
    }
    return machine_now(c->machine, now);          /* Machine.now's rule: the one copy */
}

/* sig.set(level) */
static int signal_set(PyObject *sig, int level)
{
    PyObject *r = PyObject_CallMethodOneArg(sig, str_set, level ? Py_True : Py_False);
    if (!r)
        return -1;
    Py_DECREF(r);
    return 0;
}

/* clint.py's _update_mtip(n): what C decides (dh_clint_update), done in its order */
static int clint_update_hart(ClintObject *c, int n, int64_t now)
{
    PyObject *sig = PyList_GET_ITEM(c->mtip, n);
    int level = get_truth(sig, str_level);
    if (level < 0)
        return -1;
    PyObject *ev = PyList_GET_ITEM(c->events, n);
    int has_ev = ev != Py_None;
    int64_t ev_time = 0, t = 0;
    if (has_ev && get_i64(ev, str_time, &ev_time) < 0)
        return -1;
    int act = dh_clint_update(&c->cl, n, now, level, has_ev, ev_time, &t);
    if (!act)
        return 0;
    int rc = -1;
    Py_INCREF(sig);
    Py_INCREF(ev);
    if ((act & CL_LOWER) && signal_set(sig, 0) < 0)
        goto out;
    if (act & CL_CANCEL) {
        PyObject *r = PyObject_CallMethodNoArgs(ev, str_cancel);
        if (!r)
            goto out;
        Py_DECREF(r);
        Py_INCREF(Py_None);
        if (PyList_SetItem(c->events, n, Py_None) < 0)
            goto out;
    }
    if ((act & CL_RAISE) && signal_set(sig, 1) < 0)
        goto out;
    if (act & CL_SCHEDULE) {
        PyObject *tt = PyLong_FromLongLong(t), *nn = PyLong_FromLong(n);
        PyObject *e = NULL;
        if (tt && nn) {
            PyObject *argv[4] = {tt, c->fire, nn, PyList_GET_ITEM(c->names, n)};
            e = PyObject_Vectorcall(c->at, argv, 3, str_name_kw);
        }
        Py_XDECREF(tt);
        Py_XDECREF(nn);
        if (!e || PyList_SetItem(c->events, n, e) < 0)
            goto out;
    }
    rc = 0;
out:
    Py_DECREF(sig);
    Py_DECREF(ev);
    return rc;
}

static int clint_fallback(PyObject *fn, uint32_t off, unsigned size, uint64_t *v, const uint64_t *value)
{
    PyObject *o = PyLong_FromUnsignedLong(off), *s = PyLong_FromUnsignedLong(size);
    PyObject *x = value ? PyLong_FromUnsignedLongLong(*value) : NULL, *r = NULL;
    if (o && s && (!value || x)) {
        PyObject *argv[3] = {o, s, x};
        r = PyObject_Vectorcall(fn, argv, value ? 3 : 2, NULL);
    }
    Py_XDECREF(o);
    Py_XDECREF(s);
    Py_XDECREF(x);
    if (!r)
        return -1;
    if (v) {
        unsigned long long u = PyLong_AsUnsignedLongLongMask(r);
        if (u == (unsigned long long)-1 && PyErr_Occurred()) {
            Py_DECREF(r);
            return -1;
        }
        *v = u;
    }
    Py_DECREF(r);
    return 0;
}

static int clint_mmio_read(void *self, uint32_t off, unsigned size, uint64_t *v)
{
    ClintObject *c = (ClintObject *)self;
    int n;
    unsigned sh;
    int reg = dh_clint_decode(&c->cl, off, &n, &sh);
    if (reg == CLR_NONE)
        return clint_fallback(c->fb_read, off, size, v, NULL);     /* counted as unmodelled */
    int64_t now = 0;
    if ((reg == CLR_MTIME_LO || reg == CLR_MTIME_HI) && clint_now(c, &now) < 0)
        return -1;
    *v = dh_reg_extract(dh_clint_reg_read(&c->cl, reg, n, now), sh, size);
    return 0;
}

static int clint_mmio_write(void *self, uint32_t off, unsigned size, uint64_t value)
{
    ClintObject *c = (ClintObject *)self;
    int n;
    unsigned sh;
    int64_t now;
    int reg = dh_clint_decode(&c->cl, off, &n, &sh);
    switch (reg) {
    case CLR_MSIP: {
        uint32_t v = c->cl.msip_reg[n] = dh_reg_merge(c->cl.msip_reg[n], sh, size, value);
        return signal_set(PyList_GET_ITEM(c->msip, n), (int)(v & 1));
    }
    case CLR_CMP_LO:
    case CLR_CMP_HI: {
        int hi = reg == CLR_CMP_HI;
        uint32_t *r = &c->cl.cmp_reg[2 * n + hi];
        *r = dh_reg_merge(*r, sh, size, value);
        dh_clint_set_cmp(&c->cl, n, *r, hi ? 32 : 0);
        if (clint_now(c, &now) < 0)
            return -1;
        return clint_update_hart(c, n, now);
    }
    case CLR_MTIME_LO:
    case CLR_MTIME_HI: {
        int hi = reg == CLR_MTIME_HI;
        uint32_t *r = &c->cl.mtime_reg[hi];
        *r = dh_reg_merge(*r, sh, size, value);
        if (clint_now(c, &now) < 0)
            return -1;
        dh_clint_set_mtime(&c->cl, *r, hi ? 32 : 0, now);
        for (int k = 0; k < c->cl.harts; k++)
            if (clint_update_hart(c, k, now) < 0)
                return -1;
        return 0;
    }
    }
    return clint_fallback(c->fb_write, off, size, NULL, &value);
}

static const dh_mmio_ops clint_mmio_ops = {clint_mmio_read, clint_mmio_write};

/* bind(machine, scheduler, msip, mtip, events, fire, names, bank_read, bank_write) */
static PyObject *clint_bind(ClintObject *c, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 9)
        return PyErr_Format(PyExc_TypeError,
                            "bind(machine, scheduler, msip, mtip, events, fire, names, bank_read, bank_write)");
    for (int k = 2; k <= 6; k++)
        if (k != 5 && (!PyList_Check(args[k]) || PyList_GET_SIZE(args[k]) != c->cl.harts))
            return PyErr_Format(PyExc_ValueError, "bind: msip, mtip, events and names are lists of %d",
                                c->cl.harts);
    PyObject *at = PyObject_GetAttrString(args[1], "at");
    if (!at)
        return NULL;
    PyObject **slots[] = {&c->machine, &c->sched, &c->msip, &c->mtip, &c->events, &c->fire, &c->names,
                          &c->fb_read, &c->fb_write};
    for (int k = 0; k < 9; k++) {
        Py_INCREF(args[k]);
        Py_XSETREF(*slots[k], args[k]);
    }
    Py_XSETREF(c->at, at);
    c->port.ops = &clint_mmio_ops;
    c->port.self = c;
    Py_RETURN_NONE;
}

/* the _native_mmio capsule (ports.h) of a bound model object `o` whose port is `port`. It holds no
 * reference (a capsule is not seen by the garbage collector, so one would make every model's cycle
 * uncollectable): as ports.h says, a caller keeps the model's Python object while it uses it. */
static PyObject *port_capsule(PyObject *o, dh_port *port)
{
    if (!port->ops)
        return PyErr_Format(PyExc_RuntimeError, "%s: bind() first", Py_TYPE(o)->tp_name);
    return PyCapsule_New(port, DH_MMIO_CAPSULE, NULL);
}

static PyObject *clint_port(ClintObject *c, PyObject *Py_UNUSED(ignored))
{
    return port_capsule((PyObject *)c, &c->port);
}

/* read(offset, size) / write(offset, size, value): the register map, as the bus calls it */
static PyObject *clint_read(ClintObject *c, PyObject *const *args, Py_ssize_t nargs)
{
    uint32_t off;
    long size;
    uint64_t v;
    if (nargs != 2)
        return PyErr_Format(PyExc_TypeError, "read(offset, size)");
    if (arg_u32(args[0], &off) < 0 || ((size = PyLong_AsLong(args[1])) == -1 && PyErr_Occurred()))
        return NULL;
    if (!c->port.ops)
        return PyErr_Format(PyExc_RuntimeError, "Clint: bind() first");
    if (clint_mmio_read(c, off, (unsigned)size, &v) < 0)
        return NULL;
    return PyLong_FromUnsignedLongLong(v);
}

static PyObject *clint_write(ClintObject *c, PyObject *const *args, Py_ssize_t nargs)
{
    uint32_t off;
    long size;
    if (nargs != 3)
        return PyErr_Format(PyExc_TypeError, "write(offset, size, value)");
    if (arg_u32(args[0], &off) < 0 || ((size = PyLong_AsLong(args[1])) == -1 && PyErr_Occurred()))
        return NULL;
    unsigned long long v = PyLong_AsUnsignedLongLongMask(args[2]);
    if (v == (unsigned long long)-1 && PyErr_Occurred())
        return NULL;
    if (!c->port.ops)
        return PyErr_Format(PyExc_RuntimeError, "Clint: bind() first");
    if (clint_mmio_write(c, off, (unsigned)size, v) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* update_hart(n): clint.py's _update_mtip(n) at machine.now() */
static PyObject *clint_update_hart_py(ClintObject *c, PyObject *arg)
{
    int n;
    int64_t now;
    if (clint_hart(c, arg, &n) < 0)
        return NULL;
    if (!c->port.ops)
        return PyErr_Format(PyExc_RuntimeError, "Clint: bind() first");
    if (clint_now(c, &now) < 0 || clint_update_hart(c, n, now) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* [cpustate] clint.py's _fire(n), hart n's MTIP event: the event is spent (events[n] = None), then
 * the hart is updated (MTIP raised, or a far compare rescheduled). The event's callable since
 * session 8 (2 000 Python calls per 2 virtual seconds before). */
static PyObject *clint_fire_py(ClintObject *c, PyObject *arg)
{
    int n;
    if (clint_hart(c, arg, &n) < 0)
        return NULL;
    if (!c->events || !PyList_Check(c->events) || n >= PyList_GET_SIZE(c->events))
        return PyErr_Format(PyExc_RuntimeError, "Clint: bind() first");
    Py_INCREF(Py_None);
    if (PyList_SetItem(c->events, n, Py_None) < 0)
        return NULL;
    return clint_update_hart_py(c, arg);
}

static PyGetSetDef clint_getset[] = {
    {"offset", (getter)clint_get_offset, NULL, "mtime = offset + ticks(t), mod 2**64", NULL},
    {NULL},
};

static PyMethodDef clint_methods[] = {
    {"mtime", (PyCFunction)clint_mtime, METH_O, "mtime(now) -> mtime"},
    {"cmp", (PyCFunction)clint_cmp, METH_O, "cmp(n) -> hart n's mtimecmp"},
    {"reset", (PyCFunction)clint_reset, METH_O, "reset(now): mtime 0 from now, mtimecmp all ones"},
    {"bind", (PyCFunction)(void (*)(void))clint_bind, METH_FASTCALL,
     "bind(machine, scheduler, msip, mtip, events, fire, names, bank_read, bank_write): the register "
     "map's Python side"},
    {"port", (PyCFunction)clint_port, METH_NOARGS, "port() -> the _native_mmio capsule (ports.h)"},
    {"fire", (PyCFunction)clint_fire_py, METH_O,
     "fire(n): hart n's MTIP event (events[n] = None, then update_hart(n)); the event's callable"},
    {"read", (PyCFunction)(void (*)(void))clint_read, METH_FASTCALL, "read(offset, size): a register read"},
    {"write", (PyCFunction)(void (*)(void))clint_write, METH_FASTCALL,
     "write(offset, size, value): a register write"},
    {"update_hart", (PyCFunction)clint_update_hart_py, METH_O,
     "update_hart(n): MTIP of hart n brought up to date at machine.now() (lines, events)"},
    {NULL},
};

static PyTypeObject ClintType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "duohil.engines.builtin.native._core.Clint",
    .tp_basicsize = sizeof(ClintObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = (traverseproc)clint_traverse,
    .tp_clear = (inquiry)clint_clear,
    .tp_doc = "Clint(frequency, divider, harts): a CLINT's mtime/mtimecmp state and MTIP decision in C.",
    .tp_new = clint_new,
    .tp_dealloc = (destructor)clint_dealloc,
    .tp_methods = clint_methods,
    .tp_getset = clint_getset,
};

/* -- end of the Clint block ------------------------------------------------------------------------ */

/* -- Plic: the RISC-V PLIC's state (plic.c) for one PLIC -----------------------------------------
 * (rvtrap block: gateways, priorities, enables, thresholds, claim/complete; plic.py keeps the
 * register map and the outputs) */

typedef struct {
    PyObject_HEAD
    dh_plic pl;
    /* [cbus] the register map in C (bind): the bus port, the context outputs (signals), the
     * register bank's read/write for unmodelled offsets */
    dh_port port;
    PyObject *outputs, *fb_read, *fb_write;
} PlicObject;

static PyObject *plic_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    int sources, contexts, prio;
    static char *kwlist[] = {"sources", "contexts", "priorities_enabled", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "iip:Plic", kwlist, &sources, &contexts, &prio))
        return NULL;
    if (sources < 1 || sources > PL_MAX_SOURCES || contexts < 0)
        return PyErr_Format(PyExc_ValueError, "Plic: sources must be 1..%d, contexts >= 0", PL_MAX_SOURCES);
    PlicObject *o = (PlicObject *)type->tp_alloc(type, 0);
    if (o && dh_plic_init(&o->pl, sources, contexts, prio) < 0) {
        Py_DECREF(o);
        return PyErr_NoMemory();
    }
    return (PyObject *)o;
}

static int plic_traverse(PlicObject *o, visitproc visit, void *arg)
{
    Py_VISIT(o->outputs);
    Py_VISIT(o->fb_read);
    Py_VISIT(o->fb_write);
    return 0;
}

static int plic_clear(PlicObject *o)
{
    Py_CLEAR(o->outputs);
    Py_CLEAR(o->fb_read);
    Py_CLEAR(o->fb_write);
    return 0;
}

static void plic_dealloc(PlicObject *o)
{
    PyObject_GC_UnTrack(o);
    plic_clear(o);
    dh_plic_free(&o->pl);
    Py_TYPE(o)->tp_free((PyObject *)o);
}

static int plic_int(PyObject *o, int lo, int hi, const char *what, int *out)
{
    long v = PyLong_AsLong(o);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (v < lo || v > hi) {
        PyErr_Format(PyExc_IndexError, "Plic: %s %ld out of range", what, v);
        return -1;
    }
    *out = (int)v;
    return 0;
}

static PyObject *plic_set_input(PlicObject *o, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2)
        return PyErr_Format(PyExc_TypeError, "set_input(line, level)");
    long line = PyLong_AsLong(args[0]);
    if (line == -1 && PyErr_Occurred())
        return NULL;
    int level = PyObject_IsTrue(args[1]);
    if (level < 0)
        return NULL;
    int changed = (line >= 1 && line <= o->pl.sources) ? dh_plic_set_input(&o->pl, (int)line, level) : 0;
    return PyBool_FromLong(changed);
}

static PyObject *plic_reset(PlicObject *o, PyObject *Py_UNUSED(ignored))
{
    dh_plic_reset(&o->pl);
    Py_RETURN_NONE;
}

static PyObject *plic_priority(PlicObject *o, PyObject *arg)
{
    int i;
    if (plic_int(arg, 0, o->pl.sources, "source", &i) < 0)
        return NULL;
    return PyLong_FromLong(o->pl.priority[i]);
}

static PyObject *plic_threshold(PlicObject *o, PyObject *arg)
{
    int c;
    if (plic_int(arg, 0, o->pl.contexts - 1, "context", &c) < 0)
        return NULL;
    return PyLong_FromLong(o->pl.threshold[c]);
}

/* words as one Python int, bit n = source n */
static PyObject *bits_int(const uint32_t *words)
{
    unsigned char b[4 * PL_WORDS];
    for (int w = 0; w < PL_WORDS; w++)
        for (int k = 0; k < 4; k++)
            b[4 * w + k] = (unsigned char)(words[w] >> (8 * k));
    return _PyLong_FromByteArray(b, sizeof b, 1, 0);
}

/* bits(name) -> "level", "pending", "in_flight" or ("enable", c) as an int, bit n = source n */
static PyObject *plic_bits(PlicObject *o, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 1 || !PyUnicode_Check(args[0]))
        return PyErr_Format(PyExc_TypeError, "bits(name[, context])");
    const char *n = PyUnicode_AsUTF8(args[0]);
    if (!n)
        return NULL;
    if (!strcmp(n, "level"))
        return bits_int(o->pl.level);
    if (!strcmp(n, "pending"))
        return bits_int(o->pl.pending);
    if (!strcmp(n, "in_flight"))
        return bits_int(o->pl.in_flight);
    if (!strcmp(n, "enable") && nargs == 2) {
        int c;
        if (plic_int(args[1], 0, o->pl.contexts - 1, "context", &c) < 0)
            return NULL;
        return bits_int(&o->pl.enable[c * PL_WORDS]);
    }
    return PyErr_Format(PyExc_ValueError, "bits: unknown %s", n);
}

static PyObject *plic_get_bad(PlicObject *o, void *Py_UNUSED(x))
{
    return PyLong_FromLongLong(o->pl.bad_completions);
}

/* -- [cbus] the PLIC's register map in C, served to the bus through _native_mmio -------------- */

/* each context's output set to whether it has a claimable source (a Python
 * call only where the level changes: Signal.set does nothing else) */
static int plic_update(PlicObject *o)
{
    for (int k = 0; k < o->pl.contexts; k++) {
        PyObject *sig = PyList_GET_ITEM(o->outputs, k);
        int want = dh_plic_best(&o->pl, k) != 0;
        int level = get_truth(sig, str_level);
        if (level < 0)
            return -1;
        if (level != want && signal_set(sig, want) < 0)
            return -1;
    }
    return 0;
}

static int plic_mmio_read(void *self, uint32_t off, unsigned size, uint64_t *v)
{
    PlicObject *o = (PlicObject *)self;
    int i, w;
    unsigned sh;
    uint32_t x;
    switch (dh_plic_decode(&o->pl, off, &i, &w, &sh)) {
    case PLR_PRIORITY:
        x = o->pl.priority[i];
        break;
    case PLR_PENDING:
        x = dh_plic_pending_word(&o->pl, i);
        break;
    case PLR_ENABLE:
        x = o->pl.enable[i * PL_WORDS + w];
        break;
    case PLR_THRESHOLD:
        x = o->pl.threshold[i];
        break;
    case PLR_CLAIM:
        x = (uint32_t)dh_plic_claim(&o->pl, i);
        if (x && plic_update(o) < 0)
            return -1;
        break;
    default:
        return clint_fallback(o->fb_read, off, size, v, NULL);      /* counted as unmodelled */
    }
    *v = dh_reg_extract(x, sh, size);
    return 0;
}

static int plic_mmio_write(void *self, uint32_t off, unsigned size, uint64_t value)
{
    PlicObject *o = (PlicObject *)self;
    int i, w;
    unsigned sh;
    int reg = dh_plic_decode(&o->pl, off, &i, &w, &sh);
    if (reg == PLR_NONE)
        return clint_fallback(o->fb_write, off, size, NULL, &value);
    if (reg == PLR_PENDING)
        return 0;                               /* read-only: the write changes nothing */
    uint32_t *r = dh_plic_reg(&o->pl, reg, i, w);
    uint32_t v = *r = dh_reg_merge(*r, sh, size, value);
    int changed = 0;
    switch (reg) {
    case PLR_PRIORITY:
        changed = dh_plic_set_priority(&o->pl, i, v);
        break;
    case PLR_ENABLE:
        changed = dh_plic_set_enable(&o->pl, i, w, v);
        break;
    case PLR_THRESHOLD:
        changed = dh_plic_set_threshold(&o->pl, i, v);
        break;
    case PLR_CLAIM:
        changed = dh_plic_complete(&o->pl, v);
        break;
    }
    return changed ? plic_update(o) : 0;
}

static const dh_mmio_ops plic_mmio_ops = {plic_mmio_read, plic_mmio_write};

/* bind(outputs, bank_read, bank_write) */
static PyObject *plic_bind(PlicObject *o, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !PyList_Check(args[0]) || PyList_GET_SIZE(args[0]) != o->pl.contexts)
        return PyErr_Format(PyExc_TypeError, "bind(outputs: a list of %d signals, bank_read, bank_write)",
                            o->pl.contexts);
    Py_INCREF(args[0]);
    Py_XSETREF(o->outputs, args[0]);
    Py_INCREF(args[1]);
    Py_XSETREF(o->fb_read, args[1]);
    Py_INCREF(args[2]);
    Py_XSETREF(o->fb_write, args[2]);
    o->port.ops = &plic_mmio_ops;
    o->port.self = o;
    Py_RETURN_NONE;
}

static PyObject *plic_port(PlicObject *o, PyObject *Py_UNUSED(ignored))
{
    return port_capsule((PyObject *)o, &o->port);
}

static PyObject *plic_read(PlicObject *o, PyObject *const *args, Py_ssize_t nargs)
{
    uint32_t off;
    long size;
    uint64_t v;
    if (nargs != 2)
        return PyErr_Format(PyExc_TypeError, "read(offset, size)");
    if (arg_u32(args[0], &off) < 0 || ((size = PyLong_AsLong(args[1])) == -1 && PyErr_Occurred()))
        return NULL;
    if (!o->port.ops)
        return PyErr_Format(PyExc_RuntimeError, "Plic: bind() first");
    if (plic_mmio_read(o, off, (unsigned)size, &v) < 0)
        return NULL;
    return PyLong_FromUnsignedLongLong(v);
}

static PyObject *plic_write(PlicObject *o, PyObject *const *args, Py_ssize_t nargs)
{
    uint32_t off;
    long size;
    if (nargs != 3)
        return PyErr_Format(PyExc_TypeError, "write(offset, size, value)");
    if (arg_u32(args[0], &off) < 0 || ((size = PyLong_AsLong(args[1])) == -1 && PyErr_Occurred()))
        return NULL;
    unsigned long long v = PyLong_AsUnsignedLongLongMask(args[2]);
    if (v == (unsigned long long)-1 && PyErr_Occurred())
        return NULL;
    if (!o->port.ops)
        return PyErr_Format(PyExc_RuntimeError, "Plic: bind() first");
    if (plic_mmio_write(o, off, (unsigned)size, v) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* update(): the outputs brought up to date (plic.py's _update) */
static PyObject *plic_update_py(PlicObject *o, PyObject *Py_UNUSED(ignored))
{
    if (!o->port.ops)
        return PyErr_Format(PyExc_RuntimeError, "Plic: bind() first");
    if (plic_update(o) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyGetSetDef plic_getset[] = {
    {"bad_completions", (getter)plic_get_bad, NULL, "completions of ids not in flight", NULL},
    {NULL},
};

static PyMethodDef plic_methods[] = {
    {"set_input", (PyCFunction)(void (*)(void))plic_set_input, METH_FASTCALL,
     "set_input(line, level) -> whether the outputs need re-evaluating"},
    {"reset", (PyCFunction)plic_reset, METH_NOARGS, "reset(): lines still high pending again"},
    {"priority", (PyCFunction)plic_priority, METH_O, "priority(i)"},
    {"threshold", (PyCFunction)plic_threshold, METH_O, "threshold(c)"},
    {"bits", (PyCFunction)(void (*)(void))plic_bits, METH_FASTCALL, "bits(name[, c]) -> int"},
    {"bind", (PyCFunction)(void (*)(void))plic_bind, METH_FASTCALL,
     "bind(outputs, bank_read, bank_write): the register map's Python side"},
    {"port", (PyCFunction)plic_port, METH_NOARGS, "port() -> the _native_mmio capsule (ports.h)"},
    {"read", (PyCFunction)(void (*)(void))plic_read, METH_FASTCALL, "read(offset, size): a register read"},
    {"write", (PyCFunction)(void (*)(void))plic_write, METH_FASTCALL,
     "write(offset, size, value): a register write"},
    {"update", (PyCFunction)plic_update_py, METH_NOARGS, "update(): the context outputs brought up to date"},
    {NULL},
};

static PyTypeObject PlicType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "duohil.engines.builtin.native._core.Plic",
    .tp_basicsize = sizeof(PlicObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = (traverseproc)plic_traverse,
    .tp_clear = (inquiry)plic_clear,
    .tp_doc = "Plic(sources, contexts, priorities_enabled): a PLIC's state and claim/complete in C.",
    .tp_new = plic_new,
    .tp_dealloc = (destructor)plic_dealloc,
    .tp_methods = plic_methods,
    .tp_getset = plic_getset,
};

/* -- end of the Plic block ------------------------------------------------------------------------- */

/* == Nvic: the Cortex-M7 NVIC's exception state (nvic.c) [nvicc] ================================ */

typedef struct {
    PyObject_HEAD
    dh_nvic v;
    /* [entryc] the IRQ inputs as a ports.h input (`_native_input`): a C Signal (a timer's UIF, a
     * USART's IRQ) raises a line with no Python call unless the pend must stop the running slice.
     * `owner` is nvic.py's Nvic, borrowed: a Signal holds its sink (that Nvic, which holds this
     * object) for as long as it can call the port; 0 inputs until bind_inputs. */
    dh_port input_port;
    PyObject *owner;
    int n_irq;
    /* nvic.py's `vtor` and `cpu` live here (c_attr): the C entry reads VTOR and a pend's kick
     * the CPU without a lookup on the Python Nvic. `cpu` is a strong reference (GC-visible). */
    unsigned int vtor;
    PyObject *cpu;
    /* nvic.py's Mpu keeps MPU_CTRL and whether it is suspended (bypassed at priority < 0) here:
     * the C entry tests CTRL.ENABLE, the C return the suspension, without a lookup */
    unsigned int mpu_ctrl;
    char mpu_suspended;
} NvicObject;

static PyTypeObject NvicType;

static PyObject *nv_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    int prio_mask;
    static char *kwlist[] = {"prio_mask", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "i:Nvic", kwlist, &prio_mask))
        return NULL;
    NvicObject *o = (NvicObject *)type->tp_alloc(type, 0);
    if (o && dh_nvic_init(&o->v, prio_mask) < 0) {
        Py_DECREF(o);
        return PyErr_NoMemory();
    }
    return (PyObject *)o;
}

/* [entryc] nvic.py's set_input: the line's level; a rising line pends IRQn, and a pend that made
 * it pending and enabled calls the owner's _kick (the running slice stops if it can preempt). */
/* ValueError "<nvic>: no IRQ input <line> (0..n-1)", as nvic.py says it; -1 */
static int nv_no_input(NvicObject *o, PyObject *line)
{
    PyObject *name = o->owner ? PyObject_GetAttrString(o->owner, "name") : NULL;
    if (!name && o->owner)
        return -1;
    PyErr_Format(PyExc_ValueError, "%S: no IRQ input %S (0..%d)", name ? name : Py_None, line,
                 o->n_irq - 1);
    Py_XDECREF(name);
    return -1;
}

/* nvic.py's _kick: a newly pending exception that may preempt stops the running slice --
 * cpu.kick() when the NVIC's CPU is executing; nothing else (between slices the next slice's
 * take_interrupts sees it). No Python call for a CPU that is not executing. */
static PyObject *str_nv_kick;

static int nv_kick(NvicObject *o)
{
    PyObject *cpu = o->cpu;
    if (!cpu || cpu == Py_None)
        return 0;
    Py_INCREF(cpu);
    int ex = get_truth(cpu, str_executing), rc = ex < 0 ? -1 : 0;
    if (ex > 0) {
        if (!str_nv_kick && !(str_nv_kick = PyUnicode_InternFromString("kick")))
            rc = -1;
        PyObject *r = rc ? NULL : PyObject_CallMethodNoArgs(cpu, str_nv_kick);
        rc = r ? 0 : -1;
        Py_XDECREF(r);
    }
    Py_DECREF(cpu);
    return rc;
}

static PyObject *nv_kick_m(NvicObject *o, PyObject *Py_UNUSED(ignored))
{
    return nv_kick(o) < 0 ? NULL : (Py_INCREF(Py_None), Py_None);
}

static int nv_input(void *self, int line, int level)
{
    NvicObject *o = self;
    if (line < 0 || line >= o->n_irq) {
        PyObject *l = PyLong_FromLong(line);
        if (l) {
            nv_no_input(o, l);
            Py_DECREF(l);
        }
        return -1;
    }
    int exc = 16 + line;
    if (!level) {
        o->v.level[exc >> 5] &= ~(1u << (exc & 31));
        return 0;
    }
    o->v.level[exc >> 5] |= 1u << (exc & 31);
    if (!dh_nvic_set_pending(&o->v, exc))
        return 0;
    return nv_kick(o);
}

static const dh_input_ops nv_input_ops = {nv_input};

/* bind_inputs(owner, n_irq): the Nvic face whose _kick a pend calls, and how many IRQ lines */
static PyObject *nv_bind_inputs(NvicObject *o, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2)
        return PyErr_Format(PyExc_TypeError, "bind_inputs(owner, n_irq)");
    long n = PyLong_AsLong(args[1]);
    if (n == -1 && PyErr_Occurred())
        return NULL;
    if (n < 0 || n > DH_NVIC_MAX - 16)
        return PyErr_Format(PyExc_ValueError, "bind_inputs: n_irq %ld not in 0..%d", n, DH_NVIC_MAX - 16);
    o->owner = args[0];                          /* borrowed, see NvicObject */
    o->n_irq = (int)n;
    o->input_port.ops = &nv_input_ops;
    o->input_port.self = o;
    Py_RETURN_NONE;
}

/* set_input(line, level): nvic.py's set_input (a Python Signal's sink call), the port's logic */
static PyObject *nv_set_input(NvicObject *o, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2)
        return PyErr_Format(PyExc_TypeError, "set_input(line, level)");
    if (!o->owner)
        return PyErr_Format(PyExc_RuntimeError, "set_input: bind_inputs first");
    int overflow;
    long line = PyLong_AsLongAndOverflow(args[0], &overflow);
    if (line == -1 && PyErr_Occurred())
        return NULL;
    if (overflow || line < 0 || line >= o->n_irq)
        return nv_no_input(o, args[0]), NULL;
    int level = PyObject_IsTrue(args[1]);
    if (level < 0 || nv_input(o, (int)line, level) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *nv_get_input(NvicObject *o, void *Py_UNUSED(c))
{
    if (!o->owner)
        return PyErr_Format(PyExc_AttributeError, "_native_input: bind_inputs first");
    return PyCapsule_New(&o->input_port, DH_INPUT_CAPSULE, NULL);
}

static int nv_traverse(NvicObject *o, visitproc visit, void *arg)
{
    Py_VISIT(o->cpu);
    return 0;
}

static int nv_clear(NvicObject *o)
{
    Py_CLEAR(o->cpu);
    return 0;
}

static void nv_dealloc(NvicObject *o)
{
    PyObject_GC_UnTrack(o);
    nv_clear(o);
    dh_nvic_free(&o->v);
    Py_TYPE(o)->tp_free((PyObject *)o);
}

static PyMemberDef nv_members[] = {
    {"vtor", T_UINT, offsetof(NvicObject, vtor), 0, "SCB.VTOR: the vector table's address"},
    {"cpu", T_OBJECT, offsetof(NvicObject, cpu), 0, "the core this NVIC interrupts (None: none)"},
    {"mpu_ctrl", T_UINT, offsetof(NvicObject, mpu_ctrl), 0, "MPU_CTRL (nvic.py's Mpu.ctrl)"},
    {"mpu_suspended", T_BOOL, offsetof(NvicObject, mpu_suspended), 0,
     "the MPU is bypassed at priority < 0 (nvic.py's Mpu.suspended)"},
    {NULL, 0, 0, 0, NULL},
};

/* An exception number argument: 0..255 (ValueError otherwise, never a write out of the maps). */
static int nv_exc(PyObject *o, int *out)
{
    long n = PyLong_AsLong(o);
    if (n == -1 && PyErr_Occurred())
        return -1;
    if (n < 0 || n >= DH_NVIC_MAX) {
        PyErr_Format(PyExc_ValueError, "Nvic: exception number %ld outside 0..%d", n, DH_NVIC_MAX - 1);
        return -1;
    }
    *out = (int)n;
    return 0;
}

static PyObject *nv_best_pending(NvicObject *o, PyObject *Py_UNUSED(ignored))
{
    int32_t g;
    int n = dh_nvic_best_pending(&o->v, &g);
    return Py_BuildValue("(ii)", n, (int)g);
}

static PyObject *nv_execution_priority(NvicObject *o, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3)
        return PyErr_Format(PyExc_TypeError, "execution_priority(primask, basepri, faultmask)");
    uint32_t m[3];
    for (int i = 0; i < 3; i++) {
        m[i] = (uint32_t)PyLong_AsUnsignedLongMask(args[i]);
        if (PyErr_Occurred())
            return NULL;
    }
    return PyLong_FromLong(dh_nvic_execution_priority(&o->v, m[0], m[1], m[2]));
}

static PyObject *nv_activate(NvicObject *o, PyObject *arg)
{
    int n, rc;
    if (nv_exc(arg, &n) < 0)
        return NULL;
    if ((rc = dh_nvic_activate(&o->v, n)) < 0)
        return PyErr_NoMemory();
    return PyBool_FromLong(rc);
}

#define NV_EXC_METHOD(name, fn)                                         \
    static PyObject *name(NvicObject *o, PyObject *arg)                 \
    {                                                                   \
        int n;                                                          \
        if (nv_exc(arg, &n) < 0)                                        \
            return NULL;                                                \
        return PyBool_FromLong(fn(&o->v, n));                           \
    }
NV_EXC_METHOD(nv_deactivate, dh_nvic_deactivate)
NV_EXC_METHOD(nv_set_pending, dh_nvic_set_pending)
NV_EXC_METHOD(nv_clear_pending, dh_nvic_clear_pending)
#undef NV_EXC_METHOD

static PyObject *nv_any_pending(NvicObject *o, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(dh_nvic_any_pending_enabled(&o->v));
}

static PyObject *nv_get_prio(NvicObject *o, PyObject *arg)
{
    int n;
    if (nv_exc(arg, &n) < 0)
        return NULL;
    return PyLong_FromLong(o->v.prio[n]);
}

static PyObject *nv_set_prio(NvicObject *o, PyObject *const *args, Py_ssize_t nargs)
{
    int n;
    if (nargs != 2)
        return PyErr_Format(PyExc_TypeError, "set_prio(exc, priority)");
    if (nv_exc(args[0], &n) < 0)
        return NULL;
    long p = PyLong_AsLong(args[1]);
    if (p == -1 && PyErr_Occurred())
        return NULL;
    if (p < -3 || p > 255)
        return PyErr_Format(PyExc_ValueError, "Nvic: priority %ld outside -3..255", p);
    o->v.prio[n] = (int32_t)p;
    Py_RETURN_NONE;
}

static PyObject *nv_reset(NvicObject *o, PyObject *Py_UNUSED(ignored))
{
    if (dh_nvic_init(&o->v, o->v.prio_mask) < 0)
        return PyErr_NoMemory();
    Py_RETURN_NONE;
}

/* The bitmaps as Python ints (bit n = exception n), as nvic.py keeps them. */
static PyObject *nv_get_map(NvicObject *o, void *which)
{
    const uint32_t *map = (const uint32_t *)((char *)&o->v + (size_t)which);
    unsigned char b[4 * DH_NVIC_WORDS];
    for (int i = 0; i < 4 * DH_NVIC_WORDS; i++)
        b[i] = (unsigned char)(map[i >> 2] >> (8 * (i & 3)));
    return _PyLong_FromByteArray(b, sizeof(b), 1, 0);
}

static int nv_set_map(NvicObject *o, PyObject *val, void *which)
{
    uint32_t *map = (uint32_t *)((char *)&o->v + (size_t)which);
    unsigned char b[4 * DH_NVIC_WORDS];
    if (!val || !PyLong_Check(val) || _PyLong_Sign(val) < 0) {
        PyErr_SetString(PyExc_TypeError, "Nvic: an exception bit set is a non-negative int");
        return -1;
    }
    if (_PyLong_AsByteArray((PyLongObject *)val, b, sizeof(b), 1, 0) < 0)
        return -1;
    for (int w = 0; w < DH_NVIC_WORDS; w++)
        map[w] = (uint32_t)b[4 * w] | (uint32_t)b[4 * w + 1] << 8 | (uint32_t)b[4 * w + 2] << 16
                 | (uint32_t)b[4 * w + 3] << 24;
    return 0;
}

static PyObject *nv_get_int(NvicObject *o, void *which)
{
    const int32_t *p = (const int32_t *)((char *)&o->v + (size_t)which);
    return PyLong_FromLong(*p);
}

static int nv_set_int(NvicObject *o, PyObject *val, void *which)
{
    int32_t *p = (int32_t *)((char *)&o->v + (size_t)which);
    long x = val ? PyLong_AsLong(val) : -1;
    if (!val || (x == -1 && PyErr_Occurred())) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "Nvic: cannot delete this attribute");
        return -1;
    }
    *p = (int32_t)x;
    return 0;
}

static PyObject *nv_get_taken(NvicObject *o, void *Py_UNUSED(c))
{
    return PyLong_FromUnsignedLongLong(o->v.exceptions_taken);
}

static int nv_set_taken(NvicObject *o, PyObject *val, void *Py_UNUSED(c))
{
    unsigned long long x = val ? PyLong_AsUnsignedLongLong(val) : 0;
    if (!val || PyErr_Occurred()) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "Nvic: cannot delete exceptions_taken");
        return -1;
    }
    o->v.exceptions_taken = x;
    return 0;
}

static PyObject *nv_get_stack(NvicObject *o, void *Py_UNUSED(c))
{
    PyObject *l = PyList_New(o->v.depth);
    for (int i = 0; l && i < o->v.depth; i++) {
        PyObject *x = PyLong_FromLong(o->v.stack[i]);
        if (!x) {
            Py_CLEAR(l);
            break;
        }
        PyList_SET_ITEM(l, i, x);
    }
    return l;
}

/* Replace the active stack (tests build nested states this way). */
static int nv_set_stack(NvicObject *o, PyObject *val, void *Py_UNUSED(c))
{
    PyObject *seq = val ? PySequence_Fast(val, "Nvic.stack: a sequence of exception numbers") : NULL;
    if (!seq)
        return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n > o->v.cap) {
        int32_t *s = realloc(o->v.stack, sizeof(int32_t) * n);
        if (!s) {
            Py_DECREF(seq);
            PyErr_NoMemory();
            return -1;
        }
        o->v.stack = s;
        o->v.cap = (int32_t)n;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        int e;
        if (nv_exc(PySequence_Fast_GET_ITEM(seq, i), &e) < 0) {
            Py_DECREF(seq);
            return -1;
        }
        o->v.stack[i] = e;
    }
    o->v.depth = (int32_t)n;
    Py_DECREF(seq);
    return 0;
}

#define NV_OFF(f) ((void *)offsetof(dh_nvic, f))
static PyGetSetDef nv_getset[] = {
    {"_native_input", (getter)nv_get_input, NULL, "ports.h: the IRQ input lines [entryc]", NULL},
    {"pending", (getter)nv_get_map, (setter)nv_set_map, "pending exceptions (bit n)", NV_OFF(pending)},
    {"enabled", (getter)nv_get_map, (setter)nv_set_map, "enabled exceptions (bit n)", NV_OFF(enabled)},
    {"active", (getter)nv_get_map, (setter)nv_set_map, "active exceptions (bit n)", NV_OFF(active)},
    {"level", (getter)nv_get_map, (setter)nv_set_map, "IRQ input lines that are high", NV_OFF(level)},
    {"group_mask", (getter)nv_get_int, (setter)nv_set_int, "AIRCR.PRIGROUP's group bits",
     NV_OFF(group_mask)},
    {"prio_mask", (getter)nv_get_int, (setter)nv_set_int, "implemented priority bits", NV_OFF(prio_mask)},
    {"st_waiting", (getter)nv_get_int, (setter)nv_set_int, "SysTick wraps coalesced", NV_OFF(st_waiting)},
    {"exceptions_taken", (getter)nv_get_taken, (setter)nv_set_taken, "exception entries", NULL},
    {"stack", (getter)nv_get_stack, (setter)nv_set_stack, "active exceptions, innermost last", NULL},
    {NULL},
};
#undef NV_OFF

static PyMethodDef nv_methods[] = {
    {"bind_inputs", (PyCFunction)(void (*)(void))nv_bind_inputs, METH_FASTCALL,     /* [entryc] */
     "bind_inputs(owner, n_irq): the IRQ lines as a ports.h input; owner._kick on a pend"},
    {"set_input", (PyCFunction)(void (*)(void))nv_set_input, METH_FASTCALL,         /* [entryc] */
     "set_input(line, level): an IRQ line's level, as the _native_input port sets it"},
    {"best_pending", (PyCFunction)nv_best_pending, METH_NOARGS,
     "best_pending() -> (exception, group priority); (0, 256) when nothing pending is enabled"},
    {"execution_priority", (PyCFunction)(void (*)(void))nv_execution_priority, METH_FASTCALL,
     "execution_priority(primask, basepri, faultmask) -> ARMv7-M ExecutionPriority()"},
    {"activate", (PyCFunction)nv_activate, METH_O,
     "activate(exc) -> True when SysTick's coalesced wraps must resume"},
    {"deactivate", (PyCFunction)nv_deactivate, METH_O, "deactivate(exc) -> False if it was not active"},
    {"kick", (PyCFunction)nv_kick_m, METH_NOARGS,
     "nvic.py's _kick: cpu.kick() when the bound Nvic's CPU is executing (a pend that may preempt "
     "stops the slice), else nothing."},
    {"set_pending", (PyCFunction)nv_set_pending, METH_O,
     "set_pending(exc) -> True when it became pending and is enabled"},
    {"clear_pending", (PyCFunction)nv_clear_pending, METH_O,
     "clear_pending(exc) -> True when SysTick's coalesced wraps must resume"},
    {"any_pending", (PyCFunction)nv_any_pending, METH_NOARGS, "any_pending() -> pending & enabled != 0"},
    {"get_prio", (PyCFunction)nv_get_prio, METH_O, "get_prio(exc) -> priority byte (or -3..-1)"},
    {"set_prio", (PyCFunction)(void (*)(void))nv_set_prio, METH_FASTCALL, "set_prio(exc, priority)"},
    {"reset", (PyCFunction)nv_reset, METH_NOARGS, "reset(): the state at reset (prio_mask kept)"},
    {NULL},
};

static PyTypeObject NvicType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "duohil.engines.builtin.native._core.Nvic",
    .tp_basicsize = sizeof(NvicObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = (traverseproc)nv_traverse,
    .tp_clear = (inquiry)nv_clear,
    .tp_dealloc = (destructor)nv_dealloc,
    .tp_members = nv_members,
    .tp_doc = "Nvic(prio_mask): the Cortex-M7 NVIC's exception state in C (nvic.c).",
    .tp_new = nv_new,
    .tp_methods = nv_methods,
    .tp_getset = nv_getset,
};

static int add_nvic_type(PyObject *m)
{
    if (PyType_Ready(&NvicType) < 0)
        return -1;
    Py_INCREF(&NvicType);
    if (PyModule_AddObject(m, "Nvic", (PyObject *)&NvicType) < 0) {
        Py_DECREF(&NvicType);
        return -1;
    }
    return 0;
}


/* -- [nvicc] the exception return decided in C (cortexm.py's _exc_return) ---------------------- */

static PyObject *str_fr_value, *str_fr_stop, *str_fr_sleep;

static PyObject *cm_set_fast_return(CortexMObject *c, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5 || !PyObject_TypeCheck(args[0], &NvicType) || cs_kind(args[1]) != 2)
        return PyErr_Format(PyExc_TypeError,
                            "fast_return(nvic: Nvic, cpu: CortexMState, rest, scr, now)");
    if (!c->hooked)
        return PyErr_Format(PyExc_RuntimeError, "fast_return: hook_intr first");
    if (!str_fr_value) {
#define FR_INTERN(var, s)                                      \
        if (!(var = PyUnicode_InternFromString(s)))            \
            return NULL;
        FR_INTERN(str_fr_value, "value");
        FR_INTERN(str_fr_stop, "_stop");
        FR_INTERN(str_fr_sleep, "sleep");
#undef FR_INTERN
    }
    PyObject **slots[5] = {&c->fr_nvic, &c->fr_cpu, &c->fr_rest, &c->fr_scr, &c->fr_now};
    for (int i = 0; i < 5; i++) {
        Py_INCREF(args[i]);
        Py_XSETREF(*slots[i], args[i]);
    }
    Py_RETURN_NONE;
}

static int fr_exc_return_ok(uint32_t r)
{
    return r == 0xFFFFFFF1 || r == 0xFFFFFFF9 || r == 0xFFFFFFFD || r == 0xFFFFFFE1
           || r == 0xFFFFFFE9 || r == 0xFFFFFFED;
}

/* The whole of cortexm.py's exception return for the plain return (valid EXC_RETURN of an active exception,
 * MPU not suspended, nothing to tail-chain into, the frame readable and its IPSR right): deactivate,
 * unstack, the CPU's bookkeeping. The rest goes to Python: a return an integrity check may refuse
 * (thread mode, invalid EXC_RETURN, not active, to thread with another exception active) to
 * on_return() before anything changed, the other cases to rest(...) right after the deactivation,
 * as the Python path does. */
static int fr_now(CortexMObject *c, int64_t *out);

static PyObject *cm_fast_return(CortexMObject *c)
{
    dh_nvic *nv = &((NvicObject *)c->fr_nvic)->v;
    uint32_t r[CM_RET_N], u[CM_UN_N];
    if (dh_cm_read_return(&c->cm, r) < 0)
        return PyObject_CallNoArgs(c->on_return);
    uint32_t pc = r[CM_RET_PC], exc_ret = pc | 1, cur = r[CM_RET_XPSR] & 0x1FF;
    if (!cur || !fr_exc_return_ok(exc_ret) || !dh_nvic_test(nv->active, (int)cur))
        return PyObject_CallNoArgs(c->on_return);
    if (exc_ret & 8) {
        /* to thread mode with another exception still active: CCR.NONBASETHRDENA decides
         * (ExceptionReturn()'s NestedActivation check), in Python before anything changed */
        for (int w = 0; w < DH_NVIC_WORDS; w++)
            if (nv->active[w] & ~((int)cur / 32 == w ? 1u << (cur % 32) : 0u))
                return PyObject_CallNoArgs(c->on_return);
    }
    dh_nvic_deactivate(nv, (int)cur);
    uint32_t faultmask = r[CM_RET_FAULTMASK];
    int clear_fm = (faultmask & 1) && cur != 2;
    int32_t g;
    int n = dh_nvic_best_pending(nv, &g);
    int rest = n && g < dh_nvic_execution_priority(nv, r[CM_RET_PRIMASK], r[CM_RET_BASEPRI],
                                                       clear_fm ? 0 : faultmask);
    if (!rest)
        rest = ((NvicObject *)c->fr_nvic)->mpu_suspended != 0;
    if (!rest) {
        uint32_t sp = exc_ret & 4 ? r[CM_RET_PSP] : r[CM_RET_MSP];
        int rc = dh_cm_unstack(&c->cm, sp, exc_ret, r[CM_RET_CONTROL], clear_fm, u);
        if (rc == CM_ERR_UNSTACK || rc == CM_ERR_INVPC)
            rest = 1;           /* nothing was written: Python's path reads it again and faults */
        else if (rc)
            return cm_fail(c, rc);
    }
    if (rest)
        return PyObject_CallFunction(c->fr_rest, "kkkkkkkk", (unsigned long)pc,
                                     (unsigned long)r[CM_RET_MSP], (unsigned long)r[CM_RET_PSP],
                                     (unsigned long)r[CM_RET_CONTROL], (unsigned long)r[CM_RET_PRIMASK],
                                     (unsigned long)r[CM_RET_BASEPRI], (unsigned long)faultmask,
                                     (unsigned long)cur);
    PyObject *cpu = c->fr_cpu;
    int to_thread = (exc_ret & 8) != 0;
    if (to_thread) {
        int64_t now;
        if (fr_now(c, &now) < 0)
            return NULL;
        CMS(cpu)->thread_ps = now;
        CMS(cpu)->entries = 0;
    }
    CortexMStateObject *cst = CMS(cpu);
    cst->returned_to = (dh_opt64){u[CM_UN_PC] & ~1u, 1};
    const uint32_t rs[8] = {u[0], u[1], u[2], u[3], u[4], u[5], u[CM_UN_SP], u[CM_UN_XPSR] >> 27};
    memcpy(cst->ret_state.v, rs, sizeof rs);
    cst->ret_state.set = 1;
    if (to_thread) {
        int any_active = 0;
        for (int w = 0; w < DH_NVIC_WORDS; w++)
            any_active |= nv->active[w] != 0;
        if (!any_active) {
            PyObject *scr = PyObject_GetAttr(c->fr_scr, str_fr_value);
            if (!scr)
                return NULL;
            long v = PyLong_AsLong(scr);
            Py_DECREF(scr);
            if (v == -1 && PyErr_Occurred())
                return NULL;
            if (v & 2) {                                        /* SCR.SLEEPONEXIT */
                if (cs_setattr(cpu, str_fr_stop, str_fr_sleep) < 0)
                    return NULL;
                UC.emu_stop(c->cm.uc);
            }
        }
    }
    Py_RETURN_NONE;
}


/* -- [nvicc] take_interrupts and the plain exception entry in C (cortexm.py's _enter) ------------ */


static PyObject *str_fe_halted, *str_fe_pc, *str_fe_st_resume,
    *str_fe_value;

static PyObject *cm_set_fast_entry(CortexMObject *c, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 6)
        return PyErr_Format(PyExc_TypeError,
                            "fast_entry(nvic_py, enter, after, storm_entries, storm_rate_entries, fpcar)");
    long se = PyLong_AsLong(args[3]), sr = PyLong_AsLong(args[4]);
    if (PyErr_Occurred())
        return NULL;
    c->storm_entries = se;
    c->storm_rate_entries = sr;
    if (!c->fr_nvic)
        return PyErr_Format(PyExc_RuntimeError, "fast_entry: fast_return first");
    if (!str_fe_halted) {
#define FE_INTERN(var, s)                                      \
        if (!(var = PyUnicode_InternFromString(s)))            \
            return NULL;
        FE_INTERN(str_fe_halted, "halted");
        FE_INTERN(str_fe_pc, "_pc");
        FE_INTERN(str_fe_st_resume, "_st_resume");
        FE_INTERN(str_fe_value, "value");
#undef FE_INTERN
    }
    PyObject *nirq = PyObject_GetAttrString(args[0], "n_irq");     /* [m7slice] WFI hang test */
    if (!nirq)
        return NULL;
    long ni = PyLong_AsLong(nirq);
    Py_DECREF(nirq);
    if (ni == -1 && PyErr_Occurred())
        return NULL;
    c->n_irq = ni < 0 ? 0 : (ni > DH_NVIC_MAX - 16 ? DH_NVIC_MAX - 16 : (int)ni);
    PyObject **slots[4] = {&c->fe_nvic, &c->fe_enter, &c->fe_after, &c->fe_fpcar};
    PyObject *vals[4] = {args[0], args[1], args[2], args[5]};
    for (int i = 0; i < 4; i++) {
        Py_INCREF(vals[i]);
        Py_XSETREF(*slots[i], vals[i]);
    }
    Py_RETURN_NONE;
}

static int fe_truth(PyObject *o, PyObject *name)
{
    return get_truth(o, name);             /* [cpustate] a CpuState's field, else the attribute */
}

static int fe_set_u32(PyObject *o, PyObject *name, uint32_t v)
{
    return cs_set_i64(o, name, v);
}

/* machine.now() for the entry/return's thread-mode marks: C's rule when fr_now is Machine.now
 * bound to a machine (machine_now still calls an override of a subclass), else the call */
static int fr_now(CortexMObject *c, int64_t *out)
{
    if (PyMethod_Check(c->fr_now) && machine_now_fn && PyMethod_GET_FUNCTION(c->fr_now) == machine_now_fn)
        return machine_now(PyMethod_GET_SELF(c->fr_now), out);
    PyObject *r = PyObject_CallNoArgs(c->fr_now);
    if (!r)
        return -1;
    int rc = as_i64(r, out);
    Py_DECREF(r);
    return rc;
}

/* _mask_regs(): PRIMASK, BASEPRI, FAULTMASK; between slices through the CPU's _mask_cache. */
static int fe_masks(CortexMObject *c, uint32_t m[3])
{
    CortexMStateObject *st = CMS(c->fr_cpu);
    int executing = st->cs.executing;
    if (!executing && st->mask_cache.set) {
        memcpy(m, st->mask_cache.v, sizeof st->mask_cache.v);
        return 0;
    }
    if (dh_cm_read_masks(&c->cm, m) < 0) {
        PyErr_Format(PyExc_RuntimeError, "unicorn: %s", UC.strerror(c->cm.uc_err));
        return -1;
    }
    if (!executing) {
        memcpy(st->mask_cache.v, m, sizeof st->mask_cache.v);
        st->mask_cache.set = 1;
    }
    return 0;
}

/* [entryc] Whether some byte of [addr, addr + size) lies in a range without write access. */
static int cm_write_denied(const CortexMObject *c, uint32_t addr, uint32_t size)
{
    uint64_t lo = addr, hi = (uint64_t)addr + size;
    for (size_t i = 0; i < c->wd_n; i++)
        if (c->wd[i][0] < hi && c->wd[i][1] > lo)
            return 1;
    return 0;
}

static PyObject *cm_set_write_denied(CortexMObject *c, PyObject *ranges)
{
    PyObject *seq = PySequence_Fast(ranges, "set_write_denied: a list of (start, end)");
    if (!seq)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    uint64_t (*wd)[2] = n ? PyMem_Malloc((size_t)n * sizeof *wd) : NULL;
    if (n && !wd) {
        Py_DECREF(seq);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned long long s, e;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, i), "KK;set_write_denied: (start, end)",
                              &s, &e)) {
            PyMem_Free(wd);
            Py_DECREF(seq);
            return NULL;
        }
        wd[i][0] = s;
        wd[i][1] = e;
    }
    Py_DECREF(seq);
    PyMem_Free(c->wd);
    c->wd = wd;
    c->wd_n = (size_t)n;
    Py_RETURN_NONE;
}

/* One entry into `exc`: in C when nothing but the plain case can happen (no storm test due, no
 * FP frame, the MPU off, the frame written), else by the Python entry. 0, or -1 with an error. */
static int fe_enter(CortexMObject *c, dh_nvic *nv, int exc)
{
    PyObject *cpu = c->fr_cpu, *r;
    CortexMStateObject *st = CMS(cpu);
    int cached = st->entry_cache.set != 0;
    uint32_t regs[CM_ENTRY_N];
    int rc = 0;
    if (cached)
        memcpy(regs, st->entry_cache.v, sizeof regs);
    else
        rc = dh_cm_read_entry(&c->cm, regs);
    if (rc) {
        cm_fail(c, rc);
        return -1;
    }
    long rate_n = (long)st->rate_n, entries = (long)st->entries;
    long mpu_ctrl = (long)((NvicObject *)c->fr_nvic)->mpu_ctrl;
    uint32_t handler = regs[CM_XPSR] & 0x1FF;
    /* an FP frame and an MPU are plain too when the frame's bytes are all writable: the frame
     * goes where dh_cm_stack puts it (cortexm.py's _enter decides the same from Mpu.denies) */
    uint32_t frame_sp = dh_cm_frame_sp(regs), size = regs[CM_CONTROL] & 4 ? 0x68 : 0x20;
    int plain = rate_n + 1 < c->storm_rate_entries && (!handler || entries + 1 < c->storm_entries)
            && !((mpu_ctrl & 1) && cm_write_denied(c, frame_sp, size));
    if (!plain) {               /* nothing has changed: the Python entry does it all */
        PyObject *n = PyLong_FromLong(exc);
        r = n ? PyObject_CallOneArg(c->fe_enter, n) : NULL;
        Py_XDECREF(n);
        Py_XDECREF(r);
        return r ? 0 : -1;
    }
    /* _entry_cache consumed; the storm counters and the thread-mode marks */
    st->entry_cache.set = 0;
    st->rate_n = rate_n + 1;
    uint32_t pc = regs[CM_PC];
    if (!handler) {
        int64_t now;
        if (fr_now(c, &now) < 0)
            return -1;
        st->thread_ps = now;
        st->thread_pc = pc;
        st->entries = 0;
    } else {
        st->entries = entries + 1;
    }
    long vtor = (long)((NvicObject *)c->fr_nvic)->vtor;
    if (regs[CM_CONTROL] & 4 && fe_set_u32(c->fe_fpcar, str_fe_value, frame_sp + 0x20) < 0)
        return -1;
    uint32_t vec = 0;
    rc = dh_cm_stack(&c->cm, regs, pc);
    if (!rc)
        rc = dh_cm_enter(&c->cm, regs, (uint32_t)exc, (uint32_t)vtor, &vec);
    if (rc == CM_ERR_STACK || rc == CM_ERR_VECTOR) {     /* _enter_after: STKERR, VECTTBL */
        PyObject *regs_l = u32_list(regs, CM_ENTRY_N);
        if (!regs_l)
            return -1;
        r = PyObject_CallFunction(c->fe_after, "Okil", regs_l, (unsigned long)pc, exc, (long)rc);
        Py_DECREF(regs_l);
        Py_XDECREF(r);
        return r ? 0 : -1;
    }
    if (rc) {
        cm_fail(c, rc);
        return -1;
    }
    int resume = dh_nvic_activate(nv, exc);
    if (resume < 0) {
        PyErr_NoMemory();
        return -1;
    }
    if (resume) {
        r = PyObject_CallMethodNoArgs(c->fe_nvic, str_fe_st_resume);
        if (!r)
            return -1;
        Py_DECREF(r);
    }
    st->pc = (dh_opt64){vec & ~1u, 1};
    st->returned_to.set = 0;
    st->ret_state.set = 0;
    return 0;
}

/* [entryc] cortexm.py's interrupt_pending() (the WFI wake rule): a pending enabled exception
 * that could preempt if PRIMASK were clear, BASEPRI counted (the masks as _mask_regs gives
 * them: live while executing, else the cached batch). The scheduler asks it around every slice. */
static PyObject *cm_interrupt_pending(CortexMObject *c, PyObject *Py_UNUSED(ignored))
{
    if (!c->fe_nvic)
        return PyErr_Format(PyExc_RuntimeError, "interrupt_pending: fast_entry first");
    dh_nvic *nv = &((NvicObject *)c->fr_nvic)->v;
    if (!dh_nvic_any_pending_enabled(nv))
        Py_RETURN_FALSE;
    int32_t g;
    dh_nvic_best_pending(nv, &g);
    uint32_t m[3];
    if (fe_masks(c, m) < 0)
        return NULL;
    return PyBool_FromLong(g < dh_nvic_execution_priority(nv, 0, m[1], 0));
}

static PyObject *cm_take(CortexMObject *c, PyObject *Py_UNUSED(ignored))
{
    if (!c->fe_nvic)
        return PyErr_Format(PyExc_RuntimeError, "take: fast_entry first");
    dh_nvic *nv = &((NvicObject *)c->fr_nvic)->v;
    int halted = fe_truth(c->fr_cpu, str_fe_halted);
    if (halted < 0)
        return NULL;
    if (halted || !dh_nvic_any_pending_enabled(nv))
        Py_RETURN_FALSE;
    int taken = 0;
    for (;;) {
        int32_t g;
        int n = dh_nvic_best_pending(nv, &g);
        if (!n)
            break;
        uint32_t m[3];
        if (fe_masks(c, m) < 0)
            return NULL;
        if (g >= dh_nvic_execution_priority(nv, m[0], m[1], m[2]))
            break;
        if (fe_enter(c, nv, n) < 0)
            return NULL;
        taken = 1;
        if ((halted = fe_truth(c->fr_cpu, str_fe_halted)) != 0) {
            if (halted < 0)
                return NULL;
            break;
        }
    }
    return PyBool_FromLong(taken);
}

/* == end of Nvic [nvicc] ========================================================================= */

/* == [m7slice] the Cortex-M7's slice in C (cortexm.py's _run_slice) ==============================
 *
 * One slice from the C slice driver (c_advance_to calls cpu._run_slice, which is this bound
 * method) with no Python in the common case: the per-slice resets, emu_start, the end-of-slice
 * register batch (PC, the entry registers the next entry stacks, the masks), the WFI test (a
 * site seen before, else the T1/T2 encoding at pc - 2 / pc - 4), the exception-return ambiguity
 * rule and the cheap case of the hang checks. Python (cortexm.py) is called for the rare outcomes:
 * _slice_error (a unicorn error), _do_reset (a reset requested inside the slice), _after_stop (a
 * hook's "irq" / "bus" / "mpu" stop), _remove_fired_hooks, _check_wfi_hang (nothing enabled could
 * wake the core) and _check_masked_spin (a slice ended with PRIMASK or FAULTMASK set). */

#define MS_END_N (CM_ENTRY_N + 3)
static const int MS_END_IDS[MS_END_N] = {
    UC_ARM_REG_R0, UC_ARM_REG_R1, UC_ARM_REG_R2, UC_ARM_REG_R3, UC_ARM_REG_R12, UC_ARM_REG_LR,
    UC_ARM_REG_PC, UC_ARM_REG_XPSR, UC_ARM_REG_SP, UC_ARM_REG_CONTROL,
    UC_ARM_REG_PRIMASK, UC_ARM_REG_BASEPRI, UC_ARM_REG_FAULTMASK,
};
#define MS_WFI_T1 0xBF30u
#define MS_WFI_T2 0x8003F3AFu                   /* as a little-endian word */

static PyObject *str_ms_mem_fault, *str_ms_hook_exception, *str_ms_sleeping, *str_ms_parked,
    *str_ms_hang_since, *str_ms_hung_reported, *str_ms_slice_error,
    *str_ms_do_reset, *str_ms_after_stop, *str_ms_remove_hooks, *str_ms_wfi_hang, *str_ms_masked_spin,
    *str_ms_uc_error;

/* The names both cores' slices use (interned once). 0, or -1 with an error. */
static int ms_intern(void)
{
    if (!str_ms_mem_fault) {
#define MS_INTERN(var, s)                                      \
        if (!(var = PyUnicode_InternFromString(s)))            \
            return -1;
        MS_INTERN(str_ms_mem_fault, "_mem_fault");
        MS_INTERN(str_ms_hook_exception, "_hook_exception");
        MS_INTERN(str_ms_sleeping, "sleeping");
        MS_INTERN(str_ms_parked, "parked");
        MS_INTERN(str_ms_hang_since, "_hang_since");
        MS_INTERN(str_ms_hung_reported, "_hung_reported");
        MS_INTERN(str_ms_slice_error, "_slice_error");
        MS_INTERN(str_ms_do_reset, "_do_reset");
        MS_INTERN(str_ms_after_stop, "_after_stop");
        MS_INTERN(str_ms_remove_hooks, "_remove_fired_hooks");
        MS_INTERN(str_ms_wfi_hang, "_check_wfi_hang");
        MS_INTERN(str_ms_masked_spin, "_check_masked_spin");
        MS_INTERN(str_ms_uc_error, "UcError");
        /* the names the fast entry/return sections intern, should bind_slice come first */
        if (!str_fr_stop && !(str_fr_stop = PyUnicode_InternFromString("_stop")))
            return -1;
        if (!str_fe_pc && !(str_fe_pc = PyUnicode_InternFromString("_pc")))
            return -1;
#undef MS_INTERN
    }
    return 0;
}

static PyObject *cm_bind_slice(CortexMObject *c, PyObject *cpu)
{
    if (!c->hooked)
        return PyErr_Format(PyExc_RuntimeError, "bind_slice: hook_intr first");
    if (cs_kind(cpu) != 2)
        return PyErr_Format(PyExc_TypeError, "bind_slice needs a CortexMState, not %.100s",
                            Py_TYPE(cpu)->tp_name);
    if (ms_intern() < 0)
        return NULL;
    Py_INCREF(cpu);
    Py_XSETREF(c->ms_cpu, cpu);
    Py_RETURN_NONE;
}

static int ms_wfi_known(const CortexMObject *c, int64_t a)
{
    for (size_t i = 0; i < c->wfi_n; i++)
        if (c->wfi[i] == a)
            return 1;
    return 0;
}

static int ms_wfi_add(CortexMObject *c, int64_t a)
{
    if (c->wfi_n == c->wfi_cap) {
        size_t cap = c->wfi_cap ? 2 * c->wfi_cap : 8;
        int64_t *w = PyMem_Realloc(c->wfi, cap * sizeof *w);
        if (!w) {
            PyErr_NoMemory();
            return -1;
        }
        c->wfi = w;
        c->wfi_cap = cap;
    }
    c->wfi[c->wfi_n++] = a;
    return 0;
}

static PyObject *cm_clear_wfi(CortexMObject *c, PyObject *Py_UNUSED(ignored))
{
    c->wfi_n = 0;
    Py_RETURN_NONE;
}

static PyObject *cm_wfi_sites(CortexMObject *c, PyObject *Py_UNUSED(ignored))
{
    PyObject *l = PyList_New(0);
    for (size_t i = 0; l && i < c->wfi_n; i++) {
        PyObject *x = PyLong_FromLongLong(c->wfi[i]);
        if (!x || PyList_Append(l, x) < 0)
            Py_CLEAR(l);
        Py_XDECREF(x);
    }
    if (l && PyList_Sort(l) < 0)
        Py_CLEAR(l);
    return l;
}

static PyObject *cm_bind_vtlb(CortexMObject *c, PyObject *v)
{
    if (!PyObject_TypeCheck(v, &VtlbType))
        return PyErr_Format(PyExc_TypeError, "bind_vtlb needs a _core.Vtlb, not %.100s", Py_TYPE(v)->tp_name);
    Py_INCREF(v);
    Py_XSETREF(c->vtlb, v);
    Py_RETURN_NONE;
}

static int ms_call(PyObject *cpu, PyObject *name, PyObject *arg)
{
    PyObject *r = arg ? PyObject_CallMethodOneArg(cpu, name, arg) : PyObject_CallMethodNoArgs(cpu, name);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

/* How a slice's emu_start ended, for both cores: *failed = what _slice_error gets (unicorn's error
 * number, or a UcError a hook raised: handled as emu_start's own error, as the binding does), NULL
 * for a clean slice. Any other exception a hook raised (kept on the Uc object) is raised again:
 * -1. */
static int ms_slice_failure(PyObject *uc_obj, uc_err err, PyObject **failed)
{
    *failed = NULL;
    if (err != UC_ERR_OK) {
        *failed = PyLong_FromLong((long)err);
        return *failed ? 0 : -1;
    }
    PyObject *exc = PyObject_GetAttr(uc_obj, str_ms_hook_exception);
    if (!exc)
        return -1;
    if (exc == Py_None) {
        Py_DECREF(exc);
        return 0;
    }
    PyObject *mod = PyImport_ImportModule("unicorn");
    PyObject *ucerr = mod ? PyObject_GetAttr(mod, str_ms_uc_error) : NULL;
    Py_XDECREF(mod);
    int is_uc = ucerr ? PyObject_IsInstance(exc, ucerr) : -1;
    Py_XDECREF(ucerr);
    if (is_uc <= 0) {
        if (is_uc == 0)
            PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
        Py_DECREF(exc);
        return -1;
    }
    *failed = exc;
    return 0;
}

/* Whether an exception return just went to `pc` with no instruction run after it: the registers
 * it restored (_ret_state: R0-R3, R12, LR, SP, the xPSR flags) all still hold (cortexm.py's
 * exception-return ambiguity rule). 1 ambiguous, 0 not, -1 error. */
static int ms_ambiguous(PyObject *cpu, uint32_t pc, const uint32_t *e)
{
    CortexMStateObject *st = CMS(cpu);
    if (!st->returned_to.set || st->returned_to.v != (int64_t)pc)
        return 0;
    if (!st->ret_state.set)       /* nothing known of the return: the WFI is taken as run */
        return 0;
    const uint32_t now[8] = {e[CM_R0], e[CM_R1], e[CM_R2], e[CM_R3], e[CM_R12], e[CM_LR],
                             e[CM_SP], e[CM_XPSR] >> 27};
    return memcmp(now, st->ret_state.v, sizeof now) == 0;
}

/* The slice ended with PC after a WFI? Sets `sleeping` when it did. 0, or -1 with an error. */
static int ms_wfi(CortexMObject *c, PyObject *cpu, uint32_t pc, const uint32_t *e)
{
    int64_t p = pc;
    if (!ms_wfi_known(c, p - 2) && !ms_wfi_known(c, p - 4)) {
        uint8_t b[4];
        if (UC.mem_read(c->cm.uc, (uint64_t)(uint32_t)(pc - 4), b, 4) != UC_ERR_OK)
            return 0;
        uint32_t before = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
        int64_t addr;
        if (before >> 16 == MS_WFI_T1)
            addr = p - 2;
        else if (before == MS_WFI_T2)
            addr = p - 4;
        else
            return 0;
        if (ms_wfi_add(c, addr) < 0)
            return -1;
    }
    int amb = ms_ambiguous(cpu, pc, e);
    if (amb < 0)
        return -1;
    return amb ? 0 : set_truth(cpu, str_ms_sleeping, 1);
}

/* Could something enabled ever wake the core from WFI? The first tests of _check_wfi_hang (no
 * NVIC; something pending; an IRQ line enabled); 0 leaves the decision to it. */
static int ms_may_wake(const CortexMObject *c)
{
    if (!c->fr_nvic)
        return 1;
    const dh_nvic *nv = &((NvicObject *)c->fr_nvic)->v;
    for (int w = 0; w < DH_NVIC_WORDS; w++)
        if (nv->pending[w])
            return 1;
    for (int n = 16; n < 16 + c->n_irq; n++)
        if (dh_nvic_test(nv->enabled, n))
            return 1;
    return 0;
}

/* The hang bookkeeping after a slice (not after a unicorn error): asleep with nothing to wake
 * the core, or ended with PRIMASK/FAULTMASK set (masks: the end batch's, NULL to read the CPU's
 * _mask_cache, which a rare path may have changed). */
static int ms_hang_checks(CortexMObject *c, PyObject *cpu, const uint32_t *masks)
{
    int b = get_truth(cpu, str_ms_sleeping);
    if (b < 0)
        return -1;
    if (b) {
        if ((b = get_truth(cpu, str_ms_hung_reported)) != 0)
            return b < 0 ? -1 : 0;
        return ms_may_wake(c) ? 0 : ms_call(cpu, str_ms_wfi_hang, NULL);
    }
    int masked = 0;
    if (masks) {
        masked = (masks[0] & 1) || (masks[2] & 1);
    } else if (CMS(cpu)->mask_cache.set) {
        const uint32_t *v = CMS(cpu)->mask_cache.v;
        masked = (v[0] & 1) || (v[2] & 1);
    }
    if (masked) {
        if ((b = get_truth(cpu, str_ms_parked)) < 0)
            return -1;
        if (!b)
            return ms_call(cpu, str_ms_masked_spin, NULL);
    }
    PyObject *hs = cs_getattr(cpu, str_ms_hang_since);
    if (!hs)
        return -1;
    int rc = hs == Py_None ? 0 : cs_setattr(cpu, str_ms_hang_since, Py_None);
    Py_DECREF(hs);
    return rc;
}

static int ms_is(PyObject *s, const char *what)
{
    return PyUnicode_Check(s) && PyUnicode_CompareWithASCIIString(s, what) == 0;
}

static PyObject *cm_run_slice(CortexMObject *c, PyObject *arg)
{
    PyObject *cpu = c->ms_cpu;
    if (!cpu)
        return PyErr_Format(PyExc_RuntimeError, "run_slice: bind_slice first");
    unsigned long long count = PyLong_AsUnsignedLongLong(arg);
    if (count == (unsigned long long)-1 && PyErr_Occurred())
        return NULL;
    uc_engine *uc = c->cm.uc;
    /* the PC the last slice ended at, if nothing has moved it since */
    uint32_t pc = 0;
    int rc = 0;
    CortexMStateObject *st = CMS(cpu);
    if (!st->pc.set) {
        uc_err err = UC.reg_read(uc, UC_ARM_REG_PC, &pc);
        if (err != UC_ERR_OK)
            return PyErr_Format(PyExc_RuntimeError, "unicorn: %s", UC.strerror(err));
    } else {
        pc = (uint32_t)st->pc.v;
    }
    Py_CLEAR(st->stop);
    Py_CLEAR(st->mem_fault);
    st->returned_to.set = 0;
    st->ret_state.set = st->mask_cache.set = st->entry_cache.set = 0;
    /* the binding's convention: a Python hook's exception waits in uc._hook_exception */
    if (PyObject_SetAttr(c->uc_obj, str_ms_hook_exception, Py_None) < 0)
        return NULL;
    if (c->vtlb)                                                               /* [vtlb] */
        ((VtlbObject *)c->vtlb)->t.xn_pending = 0;
    uc_err err = dh_emu_start(uc, (uint64_t)(pc | 1), 0xFFFFFFFFull, 0, (size_t)count);
    /* one-shot code hooks (interrupt_at) that fired: removed whatever happened */
    int any = st->pending_removal ? PyObject_IsTrue(st->pending_removal) : 0;
    if (any < 0 || (any && ms_call(cpu, str_ms_remove_hooks, NULL) < 0))
        return NULL;
    PyObject *failed;                     /* what _slice_error gets */
    if (ms_slice_failure(c->uc_obj, err, &failed) < 0)
        return NULL;
    if (failed && c->vtlb && ((VtlbObject *)c->vtlb)->t.xn_pending) {           /* [vtlb] */
        /* a fetch the default map (or the MPU) makes Execute Never: MemManage IACCVIOL at that PC
         * (cortexm.py's _after_error), as QEMU's own fill raised it (its prefetch abort, intno 3) */
        dh_vtlb *t = &((VtlbObject *)c->vtlb)->t;
        t->xn_pending = 0;
        /* "xn_mpu": the MPU's XN (Mpu.apply's set_xn), which _after_error may find bypassed */
        PyObject *mf = Py_BuildValue("(sk)", t->xn_kind == DH_XN_MPU ? "xn_mpu" : "xn_fetch",
                                     (unsigned long)t->xn_pc);
        rc = mf ? cs_setattr(cpu, str_ms_mem_fault, mf) : -1;
        Py_XDECREF(mf);
        if (rc < 0) {
            Py_DECREF(failed);
            return NULL;
        }
    }
    if (failed) {
        rc = cs_setattr(cpu, str_fe_pc, Py_None) < 0 ? -1 : ms_call(cpu, str_ms_slice_error, failed);
        Py_DECREF(failed);
        if (rc < 0)
            return NULL;
        Py_RETURN_NONE;
    }
    if (st->reset_pending) {
        if (ms_call(cpu, str_ms_do_reset, NULL) < 0 || ms_hang_checks(c, cpu, NULL) < 0)
            return NULL;
        Py_RETURN_NONE;
    }
    /* one batch serves the PC, the WFI test, the next exception entry and the masks */
    uint32_t e[MS_END_N] = {0};
    void *ptrs[MS_END_N];
    for (int i = 0; i < MS_END_N; i++)
        ptrs[i] = &e[i];
    err = UC.reg_read_batch(uc, (int *)MS_END_IDS, ptrs, MS_END_N);
    if (err != UC_ERR_OK)
        return PyErr_Format(PyExc_RuntimeError, "unicorn: %s", UC.strerror(err));
    if (dh_cm_fix_masks(&c->cm, e[CM_CONTROL], e[CM_XPSR], e + CM_ENTRY_N) < 0)
        return PyErr_Format(PyExc_RuntimeError, "unicorn: %s", UC.strerror(c->cm.uc_err));
    pc = e[CM_PC];
    memcpy(st->entry_cache.v, e, sizeof st->entry_cache.v);
    memcpy(st->mask_cache.v, e + CM_ENTRY_N, sizeof st->mask_cache.v);
    st->entry_cache.set = st->mask_cache.set = 1;
    st->pc = (dh_opt64){pc, 1};
    PyObject *stop = st->stop;
    if (stop && stop != Py_None) {
        Py_INCREF(stop);                  /* _after_stop may store another */
        if (ms_is(stop, "wfe") || ms_is(stop, "sleep"))
            st->cs.sleeping = 1;
        else if (ms_is(stop, "irq") || ms_is(stop, "bus") || ms_is(stop, "mpu"))
            rc = ms_call(cpu, str_ms_after_stop, stop);
        Py_DECREF(stop);
        if (rc < 0 || ms_hang_checks(c, cpu, NULL) < 0)
            return NULL;
        Py_RETURN_NONE;
    }
    if (ms_wfi(c, cpu, pc, e) < 0 || ms_hang_checks(c, cpu, e + CM_ENTRY_N) < 0)
        return NULL;
    Py_RETURN_NONE;
}


/* -- [m7slice] the RV32 core's slice in C (riscv.py's _run_slice) ----------------------------------
 *
 * The same split for the peer: the per-slice resets, the unmapped-fetch test on the regions, emu_start,
 * the end-of-slice CSR batch (_state_cache, _next_pc), the WFI test (the word before pc, remembered
 * per pc) and the cheap case of the hang checks in C; riscv.py is called for _fetch_fault, _slice_error
 * (a unicorn error), _slice_bus_fault, _step_over_store (an MMIO write that raised an interrupt
 * stopped the slice at the store), _report_wfi_hang (asleep with mie = 0), _check_masked_spin and
 * _load_spans (the first slice after reset). */

#define RS_WFI 0x10500073u

static PyObject *str_rs_fetch_fault, *str_rs_slice_bus_fault, *str_rs_step_over_store,
    *str_rs_report_wfi_hang, *str_rs_load_spans;

static PyObject *rv_bind_slice(RiscVObject *r, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || cs_kind(args[0]) != 3)
        return PyErr_Format(PyExc_TypeError, "bind_slice(cpu: RiscVState, uc)");
    if (ms_intern() < 0)
        return NULL;
    if (!str_rs_fetch_fault) {
#define RS_INTERN(var, s)                                      \
        if (!(var = PyUnicode_InternFromString(s)))            \
            return NULL;
        RS_INTERN(str_rs_fetch_fault, "_fetch_fault");
        RS_INTERN(str_rs_slice_bus_fault, "_slice_bus_fault");
        RS_INTERN(str_rs_step_over_store, "_step_over_store");
        RS_INTERN(str_rs_report_wfi_hang, "_report_wfi_hang");
        RS_INTERN(str_rs_load_spans, "_load_spans");
#undef RS_INTERN
    }
    Py_INCREF(args[0]);
    Py_XSETREF(r->rs_cpu, args[0]);
    Py_INCREF(args[1]);
    Py_XSETREF(r->rs_uc, args[1]);
    Py_RETURN_NONE;
}

static int rv_traverse(RiscVObject *r, visitproc visit, void *arg)
{
    Py_VISIT(r->rs_cpu);
    Py_VISIT(r->rs_uc);
    return 0;
}

static int rv_clear(RiscVObject *r)
{
    Py_CLEAR(r->rs_cpu);
    Py_CLEAR(r->rs_uc);
    return 0;
}

static void rv_dealloc(RiscVObject *r)
{
    PyObject_GC_UnTrack(r);
    rv_clear(r);
    PyMem_Free(r->spans);
    PyMem_Free(r->wfi_keys);
    PyMem_Free(r->wfi_vals);
    Py_TYPE(r)->tp_free((PyObject *)r);
}

static PyObject *rv_set_spans(RiscVObject *r, PyObject *arg)
{
    PyObject *seq = PySequence_Fast(arg, "set_spans: a list of (begin, end)");
    if (!seq)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    uint64_t (*sp)[2] = PyMem_Malloc((size_t)(n ? n : 1) * sizeof *sp);
    if (!sp) {
        Py_DECREF(seq);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned long long b, e;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, i), "KK;set_spans: (begin, end)", &b, &e)) {
            PyMem_Free(sp);
            Py_DECREF(seq);
            return NULL;
        }
        if (i && (b < sp[i - 1][0] || (b == sp[i - 1][0] && e < sp[i - 1][1]))) {
            PyMem_Free(sp);
            Py_DECREF(seq);
            return PyErr_Format(PyExc_ValueError, "set_spans: not sorted");
        }
        sp[i][0] = b;
        sp[i][1] = e;
    }
    Py_DECREF(seq);
    PyMem_Free(r->spans);
    r->spans = sp;
    r->spans_n = n;
    Py_RETURN_NONE;
}

static PyObject *rv_forget(RiscVObject *r, PyObject *Py_UNUSED(ignored))
{
    r->spans_n = -1;
    r->wfi_n = 0;
    if (r->wfi_keys)
        memset(r->wfi_keys, 0, r->wfi_cap * sizeof *r->wfi_keys);
    Py_RETURN_NONE;
}

/* riscv.py's former _fetch_unmapped: no region holds pc. The last region whose (begin, end) sorts
 * at or before (pc, 0xFFFFFFFF) (bisect_right) must end at or after pc. */
static int rs_fetch_unmapped(const RiscVObject *r, uint64_t pc)
{
    Py_ssize_t lo = 0, hi = r->spans_n;
    while (lo < hi) {
        Py_ssize_t mid = (lo + hi) / 2;
        if (r->spans[mid][0] < pc || (r->spans[mid][0] == pc && r->spans[mid][1] <= 0xFFFFFFFFull))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo == 0 || pc > r->spans[lo - 1][1];
}

static size_t rs_slot(const RiscVObject *r, uint64_t key)
{
    size_t mask = r->wfi_cap - 1, i = (size_t)((key * 0x9E3779B97F4A7C15ull) >> 20) & mask;
    while (r->wfi_keys[i] && r->wfi_keys[i] != key)
        i = (i + 1) & mask;
    return i;
}

/* -1 unknown, else 0/1 */
static int rs_wfi_get(const RiscVObject *r, uint64_t pc)
{
    if (!r->wfi_cap)
        return -1;
    size_t i = rs_slot(r, pc + 1);
    return r->wfi_keys[i] ? r->wfi_vals[i] : -1;
}

static int rs_wfi_put(RiscVObject *r, uint64_t pc, int v)
{
    if (2 * (r->wfi_n + 1) > r->wfi_cap) {
        size_t cap = r->wfi_cap ? 2 * r->wfi_cap : 64;
        uint64_t *ok = r->wfi_keys;
        uint8_t *ov = r->wfi_vals;
        size_t ocap = r->wfi_cap;
        r->wfi_keys = PyMem_Calloc(cap, sizeof *r->wfi_keys);
        r->wfi_vals = PyMem_Malloc(cap);
        if (!r->wfi_keys || !r->wfi_vals) {
            PyMem_Free(r->wfi_keys);
            PyMem_Free(r->wfi_vals);
            r->wfi_keys = ok;
            r->wfi_vals = ov;
            PyErr_NoMemory();
            return -1;
        }
        r->wfi_cap = cap;
        for (size_t j = 0; j < ocap; j++)
            if (ok[j]) {
                size_t i = rs_slot(r, ok[j]);
                r->wfi_keys[i] = ok[j];
                r->wfi_vals[i] = ov[j];
            }
        PyMem_Free(ok);
        PyMem_Free(ov);
    }
    size_t i = rs_slot(r, pc + 1);
    if (!r->wfi_keys[i])
        r->wfi_n++;
    r->wfi_keys[i] = pc + 1;
    r->wfi_vals[i] = (uint8_t)v;
    return 0;
}

static PyObject *rv_wfi_after(RiscVObject *r, PyObject *arg)
{
    unsigned long long pc = PyLong_AsUnsignedLongLong(arg);
    if (pc == (unsigned long long)-1 && PyErr_Occurred())
        return NULL;
    int v = rs_wfi_get(r, pc);
    if (v < 0)
        Py_RETURN_NONE;
    return PyBool_FromLong(v);
}

/* The WFI wake rule the slice driver asks around every step of a sleeping core: an interrupt
 * pending (the CPU's mip shadow) and enabled in mie, mstatus.MIE not counted; mie from the
 * end-of-slice batch (_state_cache) while it holds, else read (and not kept). */
static PyObject *rv_interrupt_pending(RiscVObject *r, PyObject *Py_UNUSED(ignored))
{
    PyObject *cpu = r->rs_cpu;
    if (!cpu)
        return PyErr_Format(PyExc_RuntimeError, "interrupt_pending: bind_slice first");
    RiscVStateObject *st = RVS(cpu);
    uint64_t mip = (uint64_t)st->mip, mie;
    if (!mip)
        Py_RETURN_FALSE;
    if (st->state_cache.set) {
        mie = st->state_cache.v[RV_ST_MIE];
    } else {
        uint64_t v[RV_ST_N];
        if (dh_rv_read_state(&r->rv, v) < 0)
            return rv_fail(r);
        mie = v[RV_ST_MIE];
    }
    return PyBool_FromLong((mip & mie) != 0);
}

/* -- [rvtake] riscv.py's take_interrupts and the interrupt path of its _enter_trap, in C --------
 * The C scheduler asks take_interrupts between slices (~1 400 times per virtual second of nominal
 * traffic): no Python runs for it. The rule (riscv.c): mip (the CPU's shadow) & mie pending, below
 * M or mstatus.MIE set; the cause MEI > MSI > MTI, then the highest other bit. The state (mie,
 * priv, mstatus, pc, mtvec) is the end-of-slice batch (_state_cache) while it holds, else read
 * and kept there. The entry: interrupts_taken + 1, _state_cache = None, the entry writes
 * (dh_rv_enter; "in a hook" when executing or below M), _next_pc = the target (None in a hook:
 * read again), last_trap = (mcause, mepc, 0). An interrupt is not an event-log record: the
 * synchronous traps (cpu_trap) stay on riscv.py's _enter_trap. */

static int rs_enter_interrupt(RiscVObject *r, PyObject *cpu, uint64_t pending, uint64_t pc,
                              uint64_t priv, uint64_t mstatus, uint64_t mtvec)
{
    RiscVStateObject *st = RVS(cpu);
    st->interrupts_taken += 1;
    st->state_cache.set = 0;
    uint32_t cause = RV_MCAUSE_INTERRUPT | dh_rv_pick_cause(pending);
    uint32_t epc = (uint32_t)pc & 0xFFFFFFFEu, target;
    int in_hook = st->cs.executing || priv != RV_PRIV_M;
    if (dh_rv_enter(&r->rv, cause, epc, 0, (uint32_t)priv, (uint32_t)mstatus, (uint32_t)mtvec,
                    in_hook, &target) < 0) {
        rv_fail(r);
        return -1;
    }
    st->next_pc = (dh_opt64){target, !in_hook};
    const uint32_t lt[3] = {cause, epc, 0};
    memcpy(st->last_trap.v, lt, sizeof lt);
    st->last_trap.set = 1;
    return 0;
}

/* [cpustate] riscv.py's set_input(line, level): the mip shadow bit of an interrupt line (CLINT
 * MSIP/MTIP -> 3/7, PLIC context 0 -> 11). A line raised while a slice runs (the firmware's own
 * MMIO write raised it) that could be taken at once (enabled in mie; below M or mstatus.MIE)
 * stops the slice: _stop_pc = the pc of that store (exact under count=), then emu_stop, unless
 * a stop is already pending. ~4 400 calls per 2 virtual seconds of nominal traffic. */
static PyObject *rv_set_input(RiscVObject *r, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2)
        return PyErr_Format(PyExc_TypeError, "set_input(line, level) takes 2 arguments");
    PyObject *cpu = r->rs_cpu;
    if (!cpu)
        return PyErr_Format(PyExc_RuntimeError, "set_input: bind_slice first");
    long line = PyLong_AsLong(args[0]);
    if (line == -1 && PyErr_Occurred())
        return NULL;
    if (line < 0 || line > 63)
        return PyErr_Format(PyExc_ValueError, "set_input: interrupt line %ld is not 0..63", line);
    int level = PyObject_IsTrue(args[1]);
    if (level < 0)
        return NULL;
    RiscVStateObject *st = RVS(cpu);
    uint64_t bit = 1ull << line, mip = (uint64_t)st->mip;
    if (!level) {
        st->mip = (int64_t)(mip & ~bit);
        Py_RETURN_NONE;
    }
    if (mip & bit)
        Py_RETURN_NONE;
    mip |= bit;
    st->mip = (int64_t)mip;
    if (!st->cs.executing || st->stop_pc.set)
        Py_RETURN_NONE;
    uint64_t v[RV_ST_N];
    if (dh_rv_read_state(&r->rv, v) < 0)
        return rv_fail(r);
    if (!((mip & bit) & v[RV_ST_MIE]) || !(v[RV_ST_PRIV] < 3 || (v[RV_ST_MSTATUS] & (1u << 3))))
        Py_RETURN_NONE;
    uint64_t pc;
    if (dh_rv_read(&r->rv, UC_RISCV_REG_PC, &pc) < 0)
        return rv_fail(r);
    st->stop_pc = (dh_opt64){(int64_t)pc, 1};
    UC.emu_stop(r->rv.uc);
    Py_RETURN_NONE;
}

static PyObject *rv_take_interrupts(RiscVObject *r, PyObject *Py_UNUSED(ignored))
{
    PyObject *cpu = r->rs_cpu;
    if (!cpu)
        return PyErr_Format(PyExc_RuntimeError, "take_interrupts: bind_slice first");
    RiscVStateObject *st = RVS(cpu);
    uint64_t mip = (uint64_t)st->mip, v[RV_ST_N];
    if (!mip)
        Py_RETURN_FALSE;
    if (!st->state_cache.set) {               /* read, and kept until something runs or writes */
        if (dh_rv_read_state(&r->rv, v) < 0)
            return rv_fail(r);
        for (int i = 0; i < RV_ST_N; i++)
            st->state_cache.v[i] = (uint32_t)v[i];
        st->state_cache.set = 1;
    } else {
        for (int i = 0; i < RV_ST_N; i++)
            v[i] = st->state_cache.v[i];
    }
    uint64_t pending = mip & v[RV_ST_MIE];
    if (!dh_rv_takeable(pending, v[RV_ST_PRIV], v[RV_ST_MSTATUS]))
        Py_RETURN_FALSE;
    if (rs_enter_interrupt(r, cpu, pending, v[RV_ST_PC], v[RV_ST_PRIV], v[RV_ST_MSTATUS],
                           v[RV_ST_MTVEC]) < 0)
        return NULL;
    Py_RETURN_TRUE;
}

/* enter_interrupt(pending, epc, priv, mstatus, mtvec): riscv.py's _on_unmask (exact_unmask: the
 * interrupt an mstatus/mie write or mret just unmasked, taken inside the slice) enters it here,
 * the one copy of the interrupt entry. */
static PyObject *rv_enter_interrupt(RiscVObject *r, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *cpu = r->rs_cpu;
    if (!cpu)
        return PyErr_Format(PyExc_RuntimeError, "enter_interrupt: bind_slice first");
    if (nargs != 5)
        return PyErr_Format(PyExc_TypeError, "enter_interrupt(pending, epc, priv, mstatus, mtvec)");
    uint64_t v[5];
    for (int i = 0; i < 5; i++) {
        v[i] = PyLong_AsUnsignedLongLongMask(args[i]);
        if (v[i] == (uint64_t)-1 && PyErr_Occurred())
            return NULL;
    }
    if (!v[0])
        return PyErr_Format(PyExc_ValueError, "enter_interrupt: nothing pending");
    if (rs_enter_interrupt(r, cpu, v[0], v[1], v[2], v[3], v[4]) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *rv_run_slice(RiscVObject *r, PyObject *arg)
{
    PyObject *cpu = r->rs_cpu;
    if (!cpu)
        return PyErr_Format(PyExc_RuntimeError, "run_slice: bind_slice first");
    unsigned long long count = PyLong_AsUnsignedLongLong(arg);
    if (count == (unsigned long long)-1 && PyErr_Occurred())
        return NULL;
    uc_engine *uc = r->rv.uc;
    RiscVStateObject *st = RVS(cpu);
    st->stop_pc.set = 0;
    uint64_t pc = 0;
    int rc = 0;
    if (!st->next_pc.set) {
        if (dh_rv_read(&r->rv, UC_RISCV_REG_PC, &pc) < 0)
            return rv_fail(r);
    } else if (st->next_pc.v < 0) {
        return PyErr_Format(PyExc_OverflowError, "_next_pc %lld is negative", (long long)st->next_pc.v);
    } else {
        pc = (uint64_t)st->next_pc.v;
    }
    st->next_pc.set = 0;
    st->state_cache.set = 0;
    if (r->spans_n < 0 && ms_call(cpu, str_rs_load_spans, NULL) < 0)
        return NULL;
    if (r->spans_n < 0)
        return PyErr_Format(PyExc_RuntimeError, "run_slice: _load_spans did not set_spans");
    if (rs_fetch_unmapped(r, pc)) {
        /* unicorn 2.1.4 keeps ~200 B of native memory per fetch from unmapped memory: the fault
         * is raised without asking it (riscv.py's _fetch_fault) */
        PyObject *pv = PyLong_FromUnsignedLongLong(pc);
        rc = pv ? ms_call(cpu, str_rs_fetch_fault, pv) : -1;
        Py_XDECREF(pv);
        if (rc < 0)
            return NULL;
        Py_RETURN_NONE;
    }
    if (PyObject_SetAttr(r->rs_uc, str_ms_hook_exception, Py_None) < 0)
        return NULL;
    uc_err err = dh_emu_start(uc, pc, 0xFFFFFFFFull, 0, (size_t)count);
    PyObject *failed;
    if (ms_slice_failure(r->rs_uc, err, &failed) < 0)
        return NULL;
    if (failed) {
        rc = ms_call(cpu, str_ms_slice_error, failed);
        Py_DECREF(failed);
        if (rc < 0)
            return NULL;
        Py_RETURN_NONE;
    }
    st->ebreak_taken = 0;
    if (st->bus_fault && st->bus_fault != Py_None) {
        if (ms_call(cpu, str_rs_slice_bus_fault, NULL) < 0)
            return NULL;
        Py_RETURN_NONE;
    }
    uint64_t sv[RV_ST_N];
    if (dh_rv_read_state(&r->rv, sv) < 0)
        return rv_fail(r);
    for (int i = 0; i < RV_ST_N; i++)
        st->state_cache.v[i] = (uint32_t)sv[i];
    st->state_cache.set = 1;
    pc = sv[RV_ST_PC];
    st->next_pc = (dh_opt64){(int64_t)pc, 1};
    /* emu_stop inside an MMIO write leaves pc *at* the store although the write is done */
    int at_store = st->stop_pc.set && st->stop_pc.v >= 0 && (uint64_t)st->stop_pc.v == pc;
    st->stop_pc.set = 0;
    PyObject *pv = PyLong_FromUnsignedLongLong(pc);
    if (!pv)
        return NULL;
    if (at_store) {
        PyObject *stepped = PyObject_CallMethodOneArg(cpu, str_rs_step_over_store, pv);
        int b = stepped ? PyObject_IsTrue(stepped) : -1;
        Py_XDECREF(stepped);
        if (b) {
            Py_DECREF(pv);
            if (b < 0)
                return NULL;
            Py_RETURN_NONE;
        }
    }
    int wfi = rs_wfi_get(r, pc);
    if (wfi < 0) {
        uint8_t w[4];
        wfi = UC.mem_read(uc, pc - 4, w, 4) == UC_ERR_OK
              && ((uint32_t)w[0] | (uint32_t)w[1] << 8 | (uint32_t)w[2] << 16 | (uint32_t)w[3] << 24) == RS_WFI;
        if (rs_wfi_put(r, pc, wfi) < 0) {
            Py_DECREF(pv);
            return NULL;
        }
    }
    int b;
    if (wfi) {
        rc = set_truth(cpu, str_ms_sleeping, 1);
        if (!rc && !sv[RV_ST_MIE]) {                 /* mie = 0: nothing can wake it */
            b = get_truth(cpu, str_ms_hung_reported);
            rc = b < 0 ? -1 : (b ? 0 : ms_call(cpu, str_rs_report_wfi_hang, pv));
        }
    } else if (sv[RV_ST_PRIV] == RV_PRIV_M && !(sv[RV_ST_MSTATUS] & RV_MSTATUS_MIE)
               && (b = get_truth(cpu, str_ms_parked)) != 1) {
        rc = b < 0 ? -1 : ms_call(cpu, str_ms_masked_spin, pv);
    } else {
        PyObject *hs = cs_getattr(cpu, str_ms_hang_since);
        rc = !hs ? -1 : (hs == Py_None ? 0 : cs_setattr(cpu, str_ms_hang_since, Py_None));
        Py_XDECREF(hs);
    }
    Py_DECREF(pv);
    if (rc < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* == end of [m7slice] ============================================================================ */

/* == UartLink: the link's per-byte path (link.c) [linkc] =======================================
 *
 * _core.UartLink holds the two directions' state (link.c), the taps as C columns and the
 * arrival events (LinkArrival, a C callable the scheduler fires). link.py's UartLink keeps the
 * Python faces (directions, add_fault, the taps' Sequence API) and hands every byte to this. */

#include <math.h>

#include "link.h"
#include "ports.h"

typedef struct {
    PyObject_HEAD
    PyObject *sched;             /* the scheduler (a _core.Scheduler: events pushed from C) */
    PyObject *rng;               /* random.Random(seed): noise draws call its random() */
    PyObject *observers;         /* list of fn(direction, k, byte, t_start) */
    PyObject *faults[2];         /* the directions' LinkFault lists (link.py keeps them) */
    dh_frame_track trk[2];       /* each sender's framing from the link's first byte */
    PyObject *byte_ls[2];        /* lists of fn(k, field, frame, len), or NULL (frame_listeners) */
    PyObject *frame_ls[2];       /* lists of fn(frame, payload, t_start), or NULL */
    PyObject *src[2], *dst[2];
    PyObject *name[2], *ev_start[2], *ev_arrive[2];
    const dh_uart_rx_ops *rx_ops[2];
    void *rx_self[2];
    dh_link_dir dir[2];
    dh_port tx_port;
    /* taps: one row per byte, in arrival order; sent and fault only where a byte has them */
    int64_t *tap_t;
    uint8_t *tap_dir;
    int16_t *tap_val;            /* -1: dropped */
    size_t ntap, tapcap;
    int64_t *sent_i;
    uint8_t *sent_v;
    size_t nsent, sentcap;
    int64_t *fault_i;
    PyObject **fault_s;
    size_t nfault, faultcap;
} LinkObject;

typedef struct {
    PyObject_HEAD
    LinkObject *link;
    int d;
    int framing;
    int value;                  /* -1: dropped */
    int sent;
    int64_t k, bit_time;
    PyObject *fault;            /* NULL: none */
} ArrivalObject;

static PyTypeObject LinkType, ArrivalType;
static PyObject *lk_empty_tuple;
static PyObject *str_lk_rx_start, *str_lk_rx_char, *str_lk_bit_time_ps, *str_lk_random, *str_lk_kind,
    *str_lk_record, *str_lk_link_fault, *str_lk_receiver_off, *str_lk_baud_mismatch, *str_lk_at,
    *str_lk_kw_record, *str_lk_kw_at, *str_lk_faultnames[LF_NKINDS];

/* scheduler.at(t, fn, *args, name=name) -> the event (new reference): straight into the C heap
 * for a _core.Scheduler (the same clamping, sequence number and compaction as `at`), else the
 * Python method. */
static PyObject *c_at(PyObject *sched, int64_t t, PyObject *fn, PyObject *args, PyObject *name)
{
    if (PyObject_TypeCheck(sched, &SchedType)) {
        SchedObject *s = (SchedObject *)sched;
        if (t < s->now)
            t = s->now;
        EventObject *ev = event_new(t, ++s->seq, fn, args, name);
        if (!ev)
            return NULL;
        if (push_event(s, ev) < 0) {
            Py_DECREF(ev);
            return NULL;
        }
        if (s->heap.n > s->compact_at)
            compact(s);
        return (PyObject *)ev;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(args);
    if (n > 4) {
        PyErr_SetString(PyExc_ValueError, "c_at: too many arguments");
        return NULL;
    }
    PyObject *stack[8], *tt = PyLong_FromLongLong(t);
    if (!tt)
        return NULL;
    stack[0] = sched;
    stack[1] = tt;
    stack[2] = fn;
    for (Py_ssize_t i = 0; i < n; i++)
        stack[3 + i] = PyTuple_GET_ITEM(args, i);
    stack[3 + n] = name;
    PyObject *r = PyObject_VectorcallMethod(str_lk_at, stack, 3 + n, str_lk_kw_at);
    Py_DECREF(tt);
    return r;
}

static int link_at(PyObject *sched, int64_t t, PyObject *fn, PyObject *args, PyObject *name)
{
    PyObject *ev = c_at(sched, t, fn, args, name);
    Py_XDECREF(ev);
    return ev ? 0 : -1;
}

static int64_t link_now(PyObject *sched, int *err)
{
    if (PyObject_TypeCheck(sched, &SchedType))
        return ((SchedObject *)sched)->now;
    PyObject *o = PyObject_GetAttr(sched, str_now);
    int64_t t = 0;
    if (!o || as_i64(o, &t) < 0)
        *err = 1;
    Py_XDECREF(o);
    return t;
}

/* -- taps ------------------------------------------------------------------------------------- */

static int grow(void **v, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    size_t nc = *cap ? *cap * 2 : 256;
    while (nc < need)
        nc *= 2;
    void *p = PyMem_Realloc(*v, nc * size);
    if (!p) {
        PyErr_NoMemory();
        return -1;
    }
    *v = p;
    return 0;
}

static int tap_append(LinkObject *l, int64_t t, int d, int value, int sent, PyObject *fault)
{
    size_t i = l->ntap, cap = l->tapcap;
    if (i + 1 > cap) {
        size_t c1 = cap, c2 = cap, c3 = cap;
        if (grow((void **)&l->tap_t, &c1, i + 1, sizeof *l->tap_t) < 0
            || grow((void **)&l->tap_dir, &c2, i + 1, sizeof *l->tap_dir) < 0
            || grow((void **)&l->tap_val, &c3, i + 1, sizeof *l->tap_val) < 0)
            return -1;
        l->tapcap = c1;
    }
    if (sent >= 0) {
        size_t c1 = l->sentcap, c2 = l->sentcap;
        if (grow((void **)&l->sent_i, &c1, l->nsent + 1, sizeof *l->sent_i) < 0
            || grow((void **)&l->sent_v, &c2, l->nsent + 1, sizeof *l->sent_v) < 0)
            return -1;
        l->sentcap = c1;
        l->sent_i[l->nsent] = (int64_t)i;
        l->sent_v[l->nsent++] = (uint8_t)sent;
    }
    if (fault) {
        size_t c1 = l->faultcap, c2 = l->faultcap;
        if (grow((void **)&l->fault_i, &c1, l->nfault + 1, sizeof *l->fault_i) < 0
            || grow((void **)&l->fault_s, &c2, l->nfault + 1, sizeof *l->fault_s) < 0)
            return -1;
        l->faultcap = c1;
        l->fault_i[l->nfault] = (int64_t)i;
        Py_INCREF(fault);
        l->fault_s[l->nfault++] = fault;
    }
    l->tap_t[i] = t;
    l->tap_dir[i] = (uint8_t)d;
    l->tap_val[i] = (int16_t)value;
    l->ntap = i + 1;
    return 0;
}

/* the position of row i in a sparse index column, or -1 */
static Py_ssize_t sparse_find(const int64_t *idx, size_t n, int64_t i)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (idx[mid] < i)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && idx[lo] == i ? (Py_ssize_t)lo : -1;
}

/* taps(start, stop) -> [(t_ps, direction index, value|None, sent|None, fault|None)] */
static PyObject *link_taps(LinkObject *l, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t start, stop;
    if (nargs != 2 || (start = PyLong_AsSsize_t(args[0])) == -1 || (stop = PyLong_AsSsize_t(args[1])) == -1) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "taps(start, stop)");
        return NULL;
    }
    if (stop > (Py_ssize_t)l->ntap)
        stop = (Py_ssize_t)l->ntap;
    if (start < 0)
        start = 0;
    if (stop < start)
        stop = start;
    PyObject *out = PyList_New(stop - start);
    if (!out)
        return NULL;
    Py_ssize_t si = sparse_find(l->sent_i, l->nsent, start), fi;
    if (si < 0) {          /* the first sparse entry at or after start */
        size_t lo = 0, hi = l->nsent;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (l->sent_i[mid] < start) lo = mid + 1; else hi = mid;
        }
        si = (Py_ssize_t)lo;
    }
    {
        size_t lo = 0, hi = l->nfault;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (l->fault_i[mid] < start) lo = mid + 1; else hi = mid;
        }
        fi = (Py_ssize_t)lo;
    }
    for (Py_ssize_t i = start; i < stop; i++) {
        PyObject *sent = Py_None, *fault = Py_None, *val = Py_None;
        PyObject *sent_o = NULL, *val_o = NULL;
        if (si < (Py_ssize_t)l->nsent && l->sent_i[si] == i)
            sent = sent_o = PyLong_FromLong(l->sent_v[si++]);
        if (fi < (Py_ssize_t)l->nfault && l->fault_i[fi] == i)
            fault = l->fault_s[fi++];
        if (l->tap_val[i] >= 0)
            val = val_o = PyLong_FromLong(l->tap_val[i]);
        PyObject *row = (sent && val) ? Py_BuildValue("(LiOOO)", (long long)l->tap_t[i],
                                                      (int)l->tap_dir[i], val, sent, fault) : NULL;
        Py_XDECREF(sent_o);
        Py_XDECREF(val_o);
        if (!row) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, i - start, row);
    }
    return out;
}

static PyObject *link_ntaps(LinkObject *l, PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromSize_t(l->ntap);
}

/* -- the arrival ---------------------------------------------------------------------------------- */

static int link_record_fault(LinkObject *l, ArrivalObject *a)
{
    PyObject *k = PyLong_FromLongLong(a->k), *sent = PyLong_FromLong(a->sent);
    PyObject *val = a->value >= 0 ? PyLong_FromLong(a->value) : (Py_INCREF(Py_None), Py_None);
    PyObject *r = NULL;
    if (k && sent && val) {
        PyObject *stack[] = {l->sched, str_lk_link_fault, l->name[a->d], k, a->fault, sent, val};
        r = PyObject_VectorcallMethod(str_lk_record, stack, 2, str_lk_kw_record);
    }
    Py_XDECREF(k);
    Py_XDECREF(sent);
    Py_XDECREF(val);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

/* the receiver's bit time: 0 = None (off) */
static int link_rx_bt(LinkObject *l, int d, int64_t *bt)
{
    if (l->rx_ops[d])
        return l->rx_ops[d]->bit_time_ps(l->rx_self[d], bt);
    PyObject *o = PyObject_CallMethodNoArgs(l->dst[d], str_lk_bit_time_ps);
    if (!o)
        return -1;
    *bt = 0;
    int rc = o == Py_None ? 0 : as_i64(o, bt);
    Py_DECREF(o);
    return rc;
}

static int link_rx_char(LinkObject *l, int d, int value, int framing)
{
    if (l->rx_ops[d])
        return l->rx_ops[d]->rx_char(l->rx_self[d], value, framing);
    PyObject *v = PyLong_FromLong(value);
    if (!v)
        return -1;
    PyObject *stack[] = {l->dst[d], v, framing ? Py_True : Py_False};
    PyObject *r = PyObject_VectorcallMethod(str_lk_rx_char, stack, 3, NULL);
    Py_DECREF(v);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

static PyObject *arrival_call(ArrivalObject *a, PyObject *args, PyObject *kw)
{
    LinkObject *l = a->link;
    int d = a->d, err = 0;
    int64_t t = link_now(l->sched, &err);
    if (err)
        return NULL;
    if (a->fault && link_record_fault(l, a) < 0)
        return NULL;
    int value = a->value, framing = a->framing;
    PyObject *fault = a->fault;
    if (value >= 0) {
        int64_t rx_bt;
        if (link_rx_bt(l, d, &rx_bt) < 0)
            return NULL;
        if (!rx_bt) {
            value = -1;
            fault = str_lk_receiver_off;
        } else if (dh_link_baud_mismatch(rx_bt, a->bit_time)) {
            value = dh_link_sample_mismatched(value, a->bit_time, rx_bt);
            framing = 1;
            if (!fault)
                fault = str_lk_baud_mismatch;
        }
    }
    if (tap_append(l, t, d, value, value != a->sent ? a->sent : -1, fault) < 0)
        return NULL;
    if (value >= 0 && link_rx_char(l, d, value, framing) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static int arrival_traverse(ArrivalObject *a, visitproc visit, void *arg)
{
    Py_VISIT(a->link);
    Py_VISIT(a->fault);
    return 0;
}

static int arrival_clear(ArrivalObject *a)
{
    Py_CLEAR(a->link);
    Py_CLEAR(a->fault);
    return 0;
}

static void arrival_dealloc(ArrivalObject *a)
{
    PyObject_GC_UnTrack(a);
    arrival_clear(a);
    Py_TYPE(a)->tp_free((PyObject *)a);
}

static PyObject *arrival_repr(ArrivalObject *a)
{
    return PyUnicode_FromFormat("<link arrival %S #%lld>", a->link ? a->link->name[a->d] : Py_None,
                                (long long)a->k);
}

static PyTypeObject ArrivalType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "duohil.engines.builtin.native._core.LinkArrival",
    .tp_basicsize = sizeof(ArrivalObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_call = (ternaryfunc)arrival_call,
    .tp_traverse = (traverseproc)arrival_traverse,
    .tp_clear = (inquiry)arrival_clear,
    .tp_dealloc = (destructor)arrival_dealloc,
    .tp_repr = (reprfunc)arrival_repr,
    .tp_doc = "One character's arrival on the link, fired by the scheduler.",
};

/* -- the transmit side ----------------------------------------------------------------------------- */

typedef struct {
    LinkObject *l;
    int d;
    int64_t frame_ps, bit_time;
} emit_ctx;

static int link_draw(void *ctx, double *out)
{
    PyObject *r = PyObject_CallMethodNoArgs(((LinkObject *)ctx)->rng, str_lk_random);
    if (!r)
        return -1;
    *out = PyFloat_AsDouble(r);
    Py_DECREF(r);
    return *out == -1.0 && PyErr_Occurred() ? -1 : 0;
}

static int link_emit(void *vctx, int64_t k, int64_t t, int sent, int value, int framing, const char *fault)
{
    emit_ctx *c = vctx;
    LinkObject *l = c->l;
    PyObject *fo = NULL;
    if (fault) {
        for (int i = 0; i < LF_NKINDS && !fo; i++)
            if (!strcmp(fault, dh_link_fault_names[i])) {
                fo = str_lk_faultnames[i];
                Py_INCREF(fo);
            }
        if (!fo && !(fo = PyUnicode_FromString(fault)))
            return -1;
    }
    if (value >= 0) {
        PyObject *rx_start;
        if (_PyObject_LookupAttr(l->dst[c->d], str_lk_rx_start, &rx_start) < 0) {
            Py_XDECREF(fo);
            return -1;
        }
        if (rx_start) {             /* optional: the start bit reaches the receiver */
            PyObject *tt = PyLong_FromLongLong(t);
            PyObject *args = tt ? PyTuple_Pack(1, tt) : NULL;
            int rc = args ? link_at(l->sched, t - c->frame_ps, rx_start, args, l->ev_start[c->d]) : -1;
            Py_XDECREF(tt);
            Py_XDECREF(args);
            Py_DECREF(rx_start);
            if (rc < 0) {
                Py_XDECREF(fo);
                return -1;
            }
        }
    }
    ArrivalObject *a = PyObject_GC_New(ArrivalObject, &ArrivalType);
    if (!a) {
        Py_XDECREF(fo);
        return -1;
    }
    Py_INCREF(l);
    a->link = l;
    a->d = c->d;
    a->k = k;
    a->sent = sent;
    a->value = value;
    a->framing = framing;
    a->bit_time = c->bit_time;
    a->fault = fo;
    PyObject_GC_Track(a);
    int rc = link_at(l->sched, t, (PyObject *)a, lk_empty_tuple, l->ev_arrive[c->d]);
    Py_DECREF(a);
    return rc;
}

static int lk_get_i64(PyObject *o, const char *name, int64_t *out)
{
    PyObject *v = PyObject_GetAttrString(o, name);
    if (!v)
        return -1;
    int rc = as_i64(v, out);
    Py_DECREF(v);
    return rc;
}

/* read the direction's LinkFault list into the C table */
static int link_sync(LinkObject *l, int d)
{
    PyObject *lst = l->faults[d];
    Py_ssize_t n = PyList_GET_SIZE(lst);
    dh_link_fault *v = n ? PyMem_Calloc((size_t)n, sizeof *v) : NULL;
    if (n && !v) {
        PyErr_NoMemory();
        return -1;
    }
    int rc = -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *f = PyList_GET_ITEM(lst, i);
        dh_link_fault *x = &v[i];
        PyObject *kind = PyObject_GetAttr(f, str_lk_kind);
        if (!kind)
            goto out;
        x->kind = -1;
        for (int j = 0; j < LF_NKINDS; j++)
            if (PyUnicode_Check(kind) && !PyUnicode_CompareWithASCIIString(kind, dh_link_fault_names[j]))
                x->kind = j;
        Py_DECREF(kind);
        if (x->kind < 0) {
            PyErr_Format(PyExc_ValueError, "unknown link fault kind in %R", f);
            goto out;
        }
        if (lk_get_i64(f, "index", &x->index) < 0 || lk_get_i64(f, "mask", &x->mask) < 0
            || lk_get_i64(f, "value", &x->value) < 0 || lk_get_i64(f, "delay_ps", &x->delay_ps) < 0
            || lk_get_i64(f, "t_start", &x->t_start) < 0 || lk_get_i64(f, "t_end", &x->t_end) < 0)
            goto out;
        PyObject *end = PyObject_GetAttrString(f, "end");
        if (!end)
            goto out;
        x->has_end = end != Py_None;
        int bad = x->has_end && as_i64(end, &x->end) < 0;
        Py_DECREF(end);
        if (bad)
            goto out;
        PyObject *ber = PyObject_GetAttrString(f, "ber");
        if (!ber)
            goto out;
        x->ber = PyFloat_AsDouble(ber);
        Py_DECREF(ber);
        if (x->ber == -1.0 && PyErr_Occurred())
            goto out;
    }
    if (dh_link_set_faults(&l->dir[d], v, (size_t)n) < 0) {
        PyErr_NoMemory();
        goto out;
    }
    rc = 0;
out:
    PyMem_Free(v);
    return rc;
}

/* [linkc] frames: the byte's field by the sender's framing (link.c dh_frame_track), then the
 * direction's listeners, if any: each byte listener with (k, field, frame index, LEN) -- field
 * "SOF", "LEN", "payload[i]", "CRC_LO", "CRC_HI" or None --, and after a frame's CRC_HI each frame
 * listener with (frame index, payload bytes, t_start). No Python runs for a byte nobody listens
 * to (inject.py's SenderTracker fed every byte to Python: ~5 % of a campaign trial). */
static PyObject *str_lk_sof, *str_lk_len, *str_lk_crc_lo, *str_lk_crc_hi;

/* every fn of ``list`` with ``args`` (the list may grow during the walk: its length is read
 * again each time); -1 at the first exception */
static int link_call(PyObject *list, PyObject *const *args, size_t n)
{
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(list); i++) {
        PyObject *fn = PyList_GET_ITEM(list, i);
        Py_INCREF(fn);
        PyObject *r = PyObject_Vectorcall(fn, args, n, NULL);
        Py_DECREF(fn);
        if (!r)
            return -1;
        Py_DECREF(r);
    }
    return 0;
}

static int link_track(LinkObject *l, int d, int64_t k, int byte, int64_t t_start)
{
    dh_frame_track *tr = &l->trk[d];
    int field = dh_frame_track_byte(tr, byte);
    PyObject *bl = l->byte_ls[d];
    if (bl && PyList_GET_SIZE(bl)) {
        PyObject *name;
        switch (field) {
        case DH_FR_SOF: name = Py_NewRef(str_lk_sof); break;
        case DH_FR_LEN: name = Py_NewRef(str_lk_len); break;
        case DH_FR_PAYLOAD: name = PyUnicode_FromFormat("payload[%d]", tr->npay - 1); break;
        case DH_FR_CRC_LO: name = Py_NewRef(str_lk_crc_lo); break;
        case DH_FR_CRC_HI: name = Py_NewRef(str_lk_crc_hi); break;
        default: name = Py_NewRef(Py_None);
        }
        PyObject *kk = PyLong_FromLongLong(k), *fr = PyLong_FromLongLong(tr->frames),
                 *ln = PyLong_FromLong(tr->len);
        int rc = name && kk && fr && ln ? 0 : -1;
        if (rc == 0) {
            PyObject *args[] = {kk, name, fr, ln};
            rc = link_call(bl, args, 4);
        }
        Py_XDECREF(name);
        Py_XDECREF(kk);
        Py_XDECREF(fr);
        Py_XDECREF(ln);
        if (rc < 0)
            return -1;
    }
    if (field != DH_FR_CRC_HI)
        return 0;
    int64_t idx = tr->frames;
    dh_frame_track_done(tr);
    PyObject *fl = l->frame_ls[d];
    if (!fl || !PyList_GET_SIZE(fl))
        return 0;
    PyObject *ii = PyLong_FromLongLong(idx), *tt = PyLong_FromLongLong(t_start),
             *pay = PyBytes_FromStringAndSize((const char *)tr->payload, tr->npay);
    int rc = ii && tt && pay ? 0 : -1;
    if (rc == 0) {
        PyObject *args[] = {ii, pay, tt};
        rc = link_call(fl, args, 3);
    }
    Py_XDECREF(ii);
    Py_XDECREF(tt);
    Py_XDECREF(pay);
    return rc;
}

/* frame_listeners(d, byte_listeners, frame_listeners): the lists link_track calls for direction d
 * (kept, not copied: appending to them later is seen) */
static PyObject *link_frame_listeners(LinkObject *l, PyObject *const *args, Py_ssize_t n)
{
    if (n != 3 || !PyList_Check(args[1]) || !PyList_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "frame_listeners(d, byte_listeners: list, frame_listeners: list)");
        return NULL;
    }
    long d = PyLong_AsLong(args[0]);
    if (d == -1 && PyErr_Occurred())
        return NULL;
    if (d != 0 && d != 1) {
        PyErr_Format(PyExc_ValueError, "direction index %ld is not 0 or 1", d);
        return NULL;
    }
    Py_XSETREF(l->byte_ls[d], Py_NewRef(args[1]));
    Py_XSETREF(l->frame_ls[d], Py_NewRef(args[2]));
    Py_RETURN_NONE;
}

/* frames(d): frames direction d's sender has completed (the next one's index) */
static PyObject *link_frames(LinkObject *l, PyObject *arg)
{
    long d = PyLong_AsLong(arg);
    if (d == -1 && PyErr_Occurred())
        return NULL;
    if (d != 0 && d != 1) {
        PyErr_Format(PyExc_ValueError, "direction index %ld is not 0 or 1", d);
        return NULL;
    }
    return PyLong_FromLongLong(l->trk[d].frames);
}

static int link_tx(LinkObject *l, PyObject *src, int byte, int64_t t_start, int64_t bit_time,
                   int64_t frame_ps, int nbits)
{
    int d = src == l->src[1] ? 1 : src == l->src[0] ? 0 : -1;
    if (d < 0) {
        PyErr_Format(PyExc_KeyError, "%R is not an end of this link", src);
        return -1;
    }
    dh_link_dir *dir = &l->dir[d];
    int64_t k = dir->sent++;
    if (link_track(l, d, k, byte, t_start) < 0)
        return -1;
    if (PyList_GET_SIZE(l->observers)) {
        PyObject *kk = PyLong_FromLongLong(k), *bb = PyLong_FromLong(byte), *tt = PyLong_FromLongLong(t_start);
        int rc = kk && bb && tt ? 0 : -1;
        if (rc == 0) {
            PyObject *args[] = {l->name[d], kk, bb, tt};
            rc = link_call(l->observers, args, 4);
        }
        Py_XDECREF(kk);
        Py_XDECREF(bb);
        Py_XDECREF(tt);
        if (rc < 0)
            return -1;
    }
    if ((size_t)PyList_GET_SIZE(l->faults[d]) != dir->nfaults && link_sync(l, d) < 0)
        return -1;
    emit_ctx c = {l, d, frame_ps, bit_time};
    int rc = dh_link_tx(dir, k, byte, t_start, frame_ps, nbits, link_draw, l, link_emit, &c);
    if (rc == -2)
        PyErr_NoMemory();
    return rc < 0 ? -1 : 0;
}

/* round(frame_bits * bit_time) and int(frame_bits + 0.5), Python's rounding */
static int frame_of_double(double fb, int64_t bt, int64_t *frame_ps, int *nbits)
{
    *frame_ps = (int64_t)nearbyint(fb * (double)bt);
    *nbits = (int)(fb + 0.5);
    return 0;
}

/* the port a native UART calls (ports.h's dh_tx_sink_ops) */
static int link_port_tx(void *self, void *src, int byte, int64_t t_start_ps, int64_t bit_time_ps,
                        double frame_bits)
{
    int64_t frame_ps;
    int nbits;
    if (frame_bits == (double)(int64_t)frame_bits) {      /* an integral frame: exact, as int * int */
        int64_t fb = (int64_t)frame_bits;
        frame_ps = fb * bit_time_ps;
        nbits = (int)fb;
    } else {
        frame_of_double(frame_bits, bit_time_ps, &frame_ps, &nbits);
    }
    return link_tx((LinkObject *)self, (PyObject *)src, byte, t_start_ps, bit_time_ps, frame_ps, nbits);
}

static const dh_tx_sink_ops link_tx_ops = {link_port_tx};

/* tx_sink(src, byte, t_start, bit_time, frame_bits): what a Python UART calls */
static PyObject *link_tx_sink(LinkObject *l, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5)
        return PyErr_Format(PyExc_TypeError, "tx_sink(src, byte, t_start, bit_time, frame_bits), got %zd args",
                            nargs);
    int64_t t_start, bt, frame_ps;
    int nbits;
    long byte = PyLong_AsLong(args[1]);
    if ((byte == -1 && PyErr_Occurred()) || as_i64(args[2], &t_start) < 0 || as_i64(args[3], &bt) < 0)
        return NULL;
    PyObject *fb = args[4];
    if (PyLong_Check(fb)) {
        int64_t f;
        if (as_i64(fb, &f) < 0)
            return NULL;
        if (__builtin_mul_overflow(f, bt, &frame_ps))
            return PyErr_Format(PyExc_OverflowError, "frame time beyond 2**63-1 ps");
        nbits = (int)f;
    } else {
        double f = PyFloat_AsDouble(fb);
        if (f == -1.0 && PyErr_Occurred())
            return NULL;
        frame_of_double(f, bt, &frame_ps, &nbits);
    }
    if (link_tx(l, args[0], (int)byte, t_start, bt, frame_ps, nbits) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *link_sync_faults(LinkObject *l, PyObject *Py_UNUSED(ignored))
{
    if (link_sync(l, 0) < 0 || link_sync(l, 1) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* dir_state(d) -> (sent, shift_ps, line_free) */
static PyObject *link_dir_state(LinkObject *l, PyObject *arg)
{
    long d = PyLong_AsLong(arg);
    if (d != 0 && d != 1)
        return PyErr_Occurred() ? NULL : PyErr_Format(PyExc_IndexError, "direction 0 or 1");
    dh_link_dir *x = &l->dir[d];
    return Py_BuildValue("(LLL)", (long long)x->sent, (long long)x->shift_ps, (long long)x->line_free);
}

/* The capsule holds no reference to the link: a capsule is invisible to the cyclic collector, so
 * one that kept its owner alive would keep the whole machine alive. Whoever keeps the capsule
 * keeps the link itself too (ports.h). */
static PyObject *link_get_tx_port(LinkObject *l, void *Py_UNUSED(c))
{
    return PyCapsule_New(&l->tx_port, DH_TX_SINK_CAPSULE, NULL);
}

static int link_rx_port(PyObject *dst, const dh_uart_rx_ops **ops, void **self)
{
    PyObject *cap;
    *ops = NULL;
    PyObject *nm = PyUnicode_FromString("_native_uart_rx");
    int found = nm ? _PyObject_LookupAttr(dst, nm, &cap) : -1;
    Py_XDECREF(nm);
    if (found < 0)
        return -1;
    if (!cap)
        return 0;
    dh_port *p = PyCapsule_GetPointer(cap, DH_UART_RX_CAPSULE);
    Py_DECREF(cap);          /* the dst (held) keeps the port alive */
    if (!p)
        return -1;
    *ops = p->ops;
    *self = p->self;
    return 0;
}

/* UartLink(scheduler, a, b, name_ab, name_ba, rng, faults_ab, faults_ba, observers, sof) */
static PyObject *link_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    PyObject *sched, *a, *b, *nab, *nba, *rng, *fab, *fba, *obs;
    int sof;
    if (!PyArg_ParseTuple(args, "OOOUUOO!O!O!i:UartLink", &sched, &a, &b, &nab, &nba, &rng,
                          &PyList_Type, &fab, &PyList_Type, &fba, &PyList_Type, &obs, &sof))
        return NULL;
    if (sof < 0 || sof > 0xFF) {
        PyErr_Format(PyExc_ValueError, "start-of-frame byte %d is not 0..255", sof);
        return NULL;
    }
    if (!str_lk_sof && (!(str_lk_sof = PyUnicode_InternFromString("SOF"))
                        || !(str_lk_len = PyUnicode_InternFromString("LEN"))
                        || !(str_lk_crc_lo = PyUnicode_InternFromString("CRC_LO"))
                        || !(str_lk_crc_hi = PyUnicode_InternFromString("CRC_HI"))))
        return NULL;
    LinkObject *l = (LinkObject *)type->tp_alloc(type, 0);
    if (!l)
        return NULL;
    dh_link_dir_init(&l->dir[0]);
    dh_link_dir_init(&l->dir[1]);
    dh_frame_track_init(&l->trk[0], sof);
    dh_frame_track_init(&l->trk[1], sof);
    l->tx_port.ops = &link_tx_ops;
    l->tx_port.self = l;
#define KEEP(f, v) Py_INCREF(v); l->f = v;
    KEEP(sched, sched) KEEP(rng, rng) KEEP(observers, obs) KEEP(faults[0], fab) KEEP(faults[1], fba)
    KEEP(src[0], a) KEEP(dst[0], b) KEEP(src[1], b) KEEP(dst[1], a) KEEP(name[0], nab) KEEP(name[1], nba)
#undef KEEP
    for (int d = 0; d < 2; d++) {
        l->ev_start[d] = PyUnicode_FromFormat("link.%U.start", l->name[d]);
        l->ev_arrive[d] = PyUnicode_FromFormat("link.%U", l->name[d]);
        if (!l->ev_start[d] || !l->ev_arrive[d] || link_rx_port(l->dst[d], &l->rx_ops[d], &l->rx_self[d]) < 0
            || link_sync(l, d) < 0) {
            Py_DECREF(l);
            return NULL;
        }
    }
    return (PyObject *)l;
}

static int link_traverse(LinkObject *l, visitproc visit, void *arg)
{
    Py_VISIT(l->sched);
    Py_VISIT(l->rng);
    Py_VISIT(l->observers);
    for (int d = 0; d < 2; d++) {
        Py_VISIT(l->faults[d]);
        Py_VISIT(l->byte_ls[d]);
        Py_VISIT(l->frame_ls[d]);
        Py_VISIT(l->src[d]);
        Py_VISIT(l->dst[d]);
    }
    return 0;
}

static int link_clear(LinkObject *l)
{
    Py_CLEAR(l->sched);
    Py_CLEAR(l->rng);
    Py_CLEAR(l->observers);
    for (int d = 0; d < 2; d++) {
        Py_CLEAR(l->faults[d]);
        Py_CLEAR(l->byte_ls[d]);
        Py_CLEAR(l->frame_ls[d]);
        Py_CLEAR(l->src[d]);
        Py_CLEAR(l->dst[d]);
        l->rx_ops[d] = NULL;
    }
    return 0;
}

static void link_dealloc(LinkObject *l)
{
    PyObject_GC_UnTrack(l);
    link_clear(l);
    for (int d = 0; d < 2; d++) {
        Py_CLEAR(l->name[d]);
        Py_CLEAR(l->ev_start[d]);
        Py_CLEAR(l->ev_arrive[d]);
        dh_link_dir_free(&l->dir[d]);
    }
    for (size_t i = 0; i < l->nfault; i++)
        Py_DECREF(l->fault_s[i]);
    PyMem_Free(l->tap_t);
    PyMem_Free(l->tap_dir);
    PyMem_Free(l->tap_val);
    PyMem_Free(l->sent_i);
    PyMem_Free(l->sent_v);
    PyMem_Free(l->fault_i);
    PyMem_Free(l->fault_s);
    Py_TYPE(l)->tp_free((PyObject *)l);
}

static PyMethodDef link_methods[] = {
    {"tx_sink", (PyCFunction)(void (*)(void))link_tx_sink, METH_FASTCALL,
     "tx_sink(src, byte, t_start, bit_time, frame_bits): a character starts leaving src."},
    {"sync_faults", (PyCFunction)link_sync_faults, METH_NOARGS,
     "Read both directions' LinkFault lists again (after add_fault / clear_faults)."},
    {"dir_state", (PyCFunction)link_dir_state, METH_O, "dir_state(d) -> (sent, shift_ps, line_free)"},
    {"taps", (PyCFunction)(void (*)(void))link_taps, METH_FASTCALL,
     "taps(start, stop) -> [(t_ps, direction index, value, sent, fault)]"},
    {"ntaps", (PyCFunction)link_ntaps, METH_NOARGS, NULL},
    {"frame_listeners", (PyCFunction)(void (*)(void))link_frame_listeners, METH_FASTCALL,
     "frame_listeners(d, byte_listeners, frame_listeners): what to call as d's frames pass"},
    {"frames", (PyCFunction)link_frames, METH_O, "frames(d): frames d's sender has completed"},
    {NULL},
};

static PyMemberDef link_members[] = {
    {"rng", T_OBJECT, offsetof(LinkObject, rng), READONLY, NULL},
    {"scheduler", T_OBJECT, offsetof(LinkObject, sched), READONLY, NULL},
    {NULL},
};

static PyGetSetDef link_getset[] = {
    {"_native_tx_sink", (getter)link_get_tx_port, NULL, "ports.h: dh_tx_sink_ops", NULL},
    {NULL},
};

static PyTypeObject LinkType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "duohil.engines.builtin.native._core.UartLink",
    .tp_basicsize = sizeof(LinkObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = link_new,
    .tp_traverse = (traverseproc)link_traverse,
    .tp_clear = (inquiry)link_clear,
    .tp_dealloc = (destructor)link_dealloc,
    .tp_methods = link_methods,
    .tp_members = link_members,
    .tp_getset = link_getset,
    .tp_doc = "The UART link per byte: directions, faults, noise, arrivals, taps (link.c).",
};

static int add_link_types(PyObject *m)
{
#define INTERN(var, s) if (!(var = PyUnicode_InternFromString(s))) return -1;
    INTERN(str_lk_rx_start, "rx_start");
    INTERN(str_lk_rx_char, "rx_char");
    INTERN(str_lk_bit_time_ps, "bit_time_ps");
    INTERN(str_lk_random, "random");
    INTERN(str_lk_kind, "kind");
    INTERN(str_lk_record, "record");
    INTERN(str_lk_link_fault, "link_fault");
    INTERN(str_lk_receiver_off, "receiver_off");
    INTERN(str_lk_baud_mismatch, "baud_mismatch");
    INTERN(str_lk_at, "at");
    for (int i = 0; i < LF_NKINDS; i++)
        INTERN(str_lk_faultnames[i], dh_link_fault_names[i]);
#undef INTERN
    if (!lk_empty_tuple && !(lk_empty_tuple = PyTuple_New(0)))
        return -1;
    if (!(str_lk_kw_record = Py_BuildValue("(sssss)", "direction", "index", "fault", "sent", "value"))
        || !(str_lk_kw_at = Py_BuildValue("(s)", "name")))
        return -1;
    if (PyType_Ready(&ArrivalType) < 0 || PyType_Ready(&LinkType) < 0)
        return -1;
    Py_INCREF(&LinkType);
    if (PyModule_AddObject(m, "UartLink", (PyObject *)&LinkType) < 0) {
        Py_DECREF(&LinkType);
        return -1;
    }
    return 0;
}

/* == end of UartLink [linkc] ===================================================================== */

/* == Esp32c3Uart: the ESP32-C3 UART (esp32c3_uart.c) [linkc] ===================================
 *
 * esp32c3_uart.py's ESP32C3Uart is a Python subclass of this type and of Peripheral: the
 * register block, FIFOs, interrupts and timing are dh_espu; this glue gives it the machine's time,
 * the scheduler's events (C callables: bound methods of this type), the IRQ Signal, the TX wire
 * (a native link's port, else the Python tx_sink) and the CPU's poll-skip. */

#include "esp32c3_uart.h"

typedef struct {
    PyObject_HEAD
    dh_espu u;
    PyObject *machine, *sched, *irq, *base_obj;
    PyObject *tx_sink;                 /* what the UART calls when a character starts leaving */
    PyObject *tx_owner;                /* the object whose _native_tx_sink port is used */
    const dh_tx_sink_ops *tx_ops;
    void *tx_self;
    PyObject *tx_event, *tout_event;   /* pending events, or NULL */
    PyObject *n_tx, *n_tout, *n_loop;
    PyObject *cb_tx_done, *cb_timeout, *cb_rx_char;
    dh_port mmio_port, rx_port;
} EspuObject;

static PyTypeObject EspuType;
static PyObject *str_eu_level, *str_eu_set, *str_eu_cancel,
    *str_eu_self, *str_eu_native_tx;

static int c_cancel(PyObject **slot)
{
    PyObject *ev = *slot;
    if (!ev)
        return 0;
    *slot = NULL;
    int rc = 0;
    if (PyObject_TypeCheck(ev, &EventType)) {
        ((EventObject *)ev)->cancelled = 1;
    } else {
        PyObject *r = PyObject_CallMethodNoArgs(ev, str_eu_cancel);
        rc = r ? 0 : -1;
        Py_XDECREF(r);
    }
    Py_DECREF(ev);
    return rc;
}

/* -- env ------------------------------------------------------------------------------------------ */

static int eu_now(void *ctx, int64_t *t)
{
    return machine_now(((EspuObject *)ctx)->machine, t);
}

static int eu_at_tx_done(void *ctx, int64_t t)
{
    EspuObject *o = ctx;
    PyObject *ev = c_at(o->sched, t, o->cb_tx_done, lk_empty_tuple, o->n_tx);
    if (!ev)
        return -1;
    Py_XSETREF(o->tx_event, ev);
    return 0;
}

static int eu_at_loopback(void *ctx, int64_t t, int byte)
{
    EspuObject *o = ctx;
    PyObject *args = Py_BuildValue("(iO)", byte, Py_False);
    if (!args)
        return -1;
    PyObject *ev = c_at(o->sched, t, o->cb_rx_char, args, o->n_loop);
    Py_DECREF(args);
    Py_XDECREF(ev);
    return ev ? 0 : -1;
}

static int eu_at_timeout(void *ctx, int64_t t)
{
    EspuObject *o = ctx;
    PyObject *ev = c_at(o->sched, t, o->cb_timeout, lk_empty_tuple, o->n_tout);
    if (!ev)
        return -1;
    Py_XSETREF(o->tout_event, ev);
    return 0;
}

static int eu_cancel_tx(void *ctx) { return c_cancel(&((EspuObject *)ctx)->tx_event); }
static int eu_cancel_timeout(void *ctx) { return c_cancel(&((EspuObject *)ctx)->tout_event); }
static int eu_has_timeout(void *ctx) { return ((EspuObject *)ctx)->tout_event != NULL; }

static int eu_irq(void *ctx, int level)
{
    EspuObject *o = ctx;
    PyObject *cur = PyObject_GetAttr(o->irq, str_eu_level);
    if (!cur)
        return -1;
    int was = PyObject_IsTrue(cur);
    Py_DECREF(cur);
    if (was < 0)
        return -1;
    if (was == level)
        return 0;
    PyObject *r = PyObject_CallMethodOneArg(o->irq, str_eu_set, level ? Py_True : Py_False);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

static int eu_tx(void *ctx, int byte, int64_t t, int64_t bt, int frame2)
{
    EspuObject *o = ctx;
    if (o->tx_ops)
        return o->tx_ops->tx(o->tx_self, o, byte, t, bt, frame2 / 2.0);
    if (o->tx_sink == Py_None)
        return 0;
    PyObject *fb = frame2 % 2 ? PyFloat_FromDouble(frame2 / 2.0) : PyLong_FromLong(frame2 / 2);
    PyObject *bb = PyLong_FromLong(byte), *tt = PyLong_FromLongLong(t), *bts = PyLong_FromLongLong(bt);
    PyObject *r = NULL;
    if (fb && bb && tt && bts) {
        PyObject *stack[] = {NULL, (PyObject *)o, bb, tt, bts, fb};
        PyObject *fn = o->tx_sink;
        Py_INCREF(fn);
        r = PyObject_Vectorcall(fn, stack + 1, 5 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
        Py_DECREF(fn);
    }
    Py_XDECREF(fb);
    Py_XDECREF(bb);
    Py_XDECREF(tt);
    Py_XDECREF(bts);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

static int eu_cpu(EspuObject *o, PyObject **cpu)
{
    *cpu = PyObject_GetAttr(o->machine, str_cpu);
    return *cpu ? 0 : -1;
}

static int eu_poll_hint(void *ctx, int64_t wake, int has_wake)
{
    EspuObject *o = ctx;
    PyObject *cpu;
    if (eu_cpu(o, &cpu) < 0)
        return -1;
    int rc = cpu == Py_None ? 0 : cpu_poll_hint(cpu, o->base_obj, has_wake, wake);    /* [pollc] */
    Py_DECREF(cpu);
    return rc;
}

static int machine_count_write(PyObject *machine);           /* [rvtake], after the Bus */

/* A FIFO read changes state: it breaks the CPU's polling run and masked-spin window as a write
 * does, so it is counted as one (Machine.mmio_writes, which cpu.py's poll_hint and the cores'
 * _check_masked_spin compare) instead of calling the CPU's Python note_write (~2 800 calls per
 * virtual second of nominal traffic). [rvtake] */
static int eu_note_write(void *ctx)
{
    EspuObject *o = ctx;
    return machine_count_write(o->machine);
}

/* -- ports ----------------------------------------------------------------------------------------- */

static int eu_mmio_read(void *self, uint32_t offset, unsigned size, uint64_t *value)
{
    return dh_espu_read(&((EspuObject *)self)->u, offset, size, value);
}

static int eu_mmio_write(void *self, uint32_t offset, unsigned size, uint64_t value)
{
    return dh_espu_write(&((EspuObject *)self)->u, offset, size, value);
}

static int eu_port_rx_char(void *self, int byte, int framing)
{
    return dh_espu_rx_char(&((EspuObject *)self)->u, byte & 0xFF, framing);
}

static int eu_port_bit_time(void *self, int64_t *out)
{
    *out = dh_espu_bit_time(&((EspuObject *)self)->u, 1);
    return 0;
}

static const dh_mmio_ops eu_mmio_ops = {eu_mmio_read, eu_mmio_write};
static const dh_uart_rx_ops eu_rx_ops = {eu_port_rx_char, eu_port_bit_time};

/* No reference to the UART in the capsule (see link_get_tx_port): the holder keeps the UART. */
static PyObject *eu_capsule(EspuObject *o, dh_port *port, const char *name)
{
    return PyCapsule_New(port, name, NULL);
}

static PyObject *eu_get_mmio(EspuObject *o, void *Py_UNUSED(c))
{
    return eu_capsule(o, &o->mmio_port, DH_MMIO_CAPSULE);
}

static PyObject *eu_get_rx(EspuObject *o, void *Py_UNUSED(c))
{
    return eu_capsule(o, &o->rx_port, DH_UART_RX_CAPSULE);
}

/* -- the type -------------------------------------------------------------------------------------- */

static PyObject *eu_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    EspuObject *o = (EspuObject *)type->tp_alloc(type, 0);
    if (!o)
        return NULL;
    dh_espu_env env = {o, eu_now, eu_at_tx_done, eu_at_loopback, eu_at_timeout, eu_cancel_tx,
                       eu_cancel_timeout, eu_has_timeout, eu_irq, eu_tx, eu_poll_hint, eu_note_write};
    o->u.env = env;
    dh_espu_init(&o->u);
    o->mmio_port.ops = &eu_mmio_ops;
    o->mmio_port.self = o;
    o->rx_port.ops = &eu_rx_ops;
    o->rx_port.self = o;
    Py_INCREF(Py_None);
    o->tx_sink = Py_None;
    return (PyObject *)o;
}

/* _native_setup(machine, irq_signal, name, base): wired once from ESP32C3Uart.__init__ */
static PyObject *eu_setup(EspuObject *o, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4 || !PyUnicode_Check(args[2]))
        return PyErr_Format(PyExc_TypeError, "_native_setup(machine, irq, name, base)");
    PyObject *sched = PyObject_GetAttr(args[0], str_scheduler);
    if (!sched)
        return NULL;
    Py_XSETREF(o->sched, sched);
    Py_INCREF(args[0]);
    Py_XSETREF(o->machine, args[0]);
    Py_INCREF(args[1]);
    Py_XSETREF(o->irq, args[1]);
    Py_INCREF(args[3]);
    Py_XSETREF(o->base_obj, args[3]);
    Py_XSETREF(o->n_tx, PyUnicode_FromFormat("%U.tx", args[2]));
    Py_XSETREF(o->n_tout, PyUnicode_FromFormat("%U.rx_tout", args[2]));
    Py_XSETREF(o->n_loop, PyUnicode_FromFormat("%U.loopback", args[2]));
    Py_XSETREF(o->cb_tx_done, PyObject_GetAttrString((PyObject *)o, "_tx_done"));
    Py_XSETREF(o->cb_timeout, PyObject_GetAttrString((PyObject *)o, "_timeout"));
    Py_XSETREF(o->cb_rx_char, PyObject_GetAttrString((PyObject *)o, "rx_char"));
    if (!o->n_tx || !o->n_tout || !o->n_loop || !o->cb_tx_done || !o->cb_timeout || !o->cb_rx_char)
        return NULL;
    Py_RETURN_NONE;
}

static int eu_ready(EspuObject *o)
{
    if (!o->machine) {
        PyErr_SetString(PyExc_RuntimeError, "Esp32c3Uart used before _native_setup");
        return -1;
    }
    return 0;
}

static int eu_u32(PyObject *o, uint64_t *out)
{
    unsigned long long v = PyLong_AsUnsignedLongLongMask(o);
    if (v == (unsigned long long)-1 && PyErr_Occurred())
        return -1;
    *out = v;
    return 0;
}

static PyObject *eu_read(EspuObject *o, PyObject *const *args, Py_ssize_t nargs)
{
    uint64_t off, size = 4, v;
    if (nargs < 1 || nargs > 2)
        return PyErr_Format(PyExc_TypeError, "read(offset, size=4)");
    if (eu_ready(o) < 0 || eu_u32(args[0], &off) < 0 || (nargs == 2 && eu_u32(args[1], &size) < 0))
        return NULL;
    if (dh_espu_read(&o->u, (uint32_t)off, (unsigned)size, &v) < 0)
        return NULL;
    return PyLong_FromUnsignedLongLong(v);
}

static PyObject *eu_write(EspuObject *o, PyObject *const *args, Py_ssize_t nargs)
{
    uint64_t off, size, v;
    if (nargs != 3)
        return PyErr_Format(PyExc_TypeError, "write(offset, size, value)");
    if (eu_ready(o) < 0 || eu_u32(args[0], &off) < 0 || eu_u32(args[1], &size) < 0 || eu_u32(args[2], &v) < 0)
        return NULL;
    if (dh_espu_write(&o->u, (uint32_t)off, (unsigned)size, v) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *eu_rx_char(EspuObject *o, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 1 || nargs > 2)
        return PyErr_Format(PyExc_TypeError, "rx_char(byte, framing_error=False)");
    long b = PyLong_AsLong(args[0]);
    if (b == -1 && PyErr_Occurred())
        return NULL;
    int fe = nargs == 2 ? PyObject_IsTrue(args[1]) : 0;
    if (fe < 0 || eu_ready(o) < 0 || dh_espu_rx_char(&o->u, (int)(b & 0xFF), fe) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *eu_rx_start(EspuObject *o, PyObject *arg)
{
    int64_t t;
    if (as_i64(arg, &t) < 0 || dh_espu_rx_start(&o->u, t) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *eu_tx_done(EspuObject *o, PyObject *Py_UNUSED(ignored))
{
    Py_CLEAR(o->tx_event);
    if (dh_espu_tx_done(&o->u) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *eu_timeout(EspuObject *o, PyObject *Py_UNUSED(ignored))
{
    Py_CLEAR(o->tout_event);
    if (dh_espu_timeout(&o->u) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *eu_reset(EspuObject *o, PyObject *Py_UNUSED(ignored))
{
    if (eu_ready(o) < 0 || dh_espu_reset(&o->u) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *opt_ps(int64_t v)
{
    if (!v)
        Py_RETURN_NONE;
    return PyLong_FromLongLong(v);
}

static PyObject *eu_bit_time_ps(EspuObject *o, PyObject *Py_UNUSED(ignored))
{
    return opt_ps(dh_espu_bit_time(&o->u, 1));
}

static PyObject *eu_bit_time(EspuObject *o, PyObject *Py_UNUSED(ignored))
{
    return opt_ps(dh_espu_bit_time(&o->u, 0));
}

static PyObject *eu_char_time_ps(EspuObject *o, PyObject *Py_UNUSED(ignored))
{
    return opt_ps(dh_espu_char_ps(&o->u));
}

static PyObject *eu_frame2(EspuObject *o, PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromLong(dh_espu_frame2(&o->u));
}

static PyObject *eu_int_raw(EspuObject *o, PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromUnsignedLong(dh_espu_int_raw(&o->u));
}

static PyObject *eu_status(EspuObject *o, PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromUnsignedLong(dh_espu_status(&o->u));
}

static PyObject *eu_reg(EspuObject *o, PyObject *arg)
{
    long off = PyLong_AsLong(arg);
    if (off == -1 && PyErr_Occurred())
        return NULL;
    if (off < 0 || off >= ESPU_NREGS * 4 || off & 3)
        return PyErr_Format(PyExc_IndexError, "no register word at %#lx", off);
    return PyLong_FromUnsignedLong(o->u.reg[off >> 2]);
}

static PyObject *fifo_bytes(const uint8_t *v, int head, int n)
{
    PyObject *b = PyBytes_FromStringAndSize(NULL, n);
    if (!b)
        return NULL;
    for (int i = 0; i < n; i++)
        PyBytes_AS_STRING(b)[i] = (char)v[(head + i) % ESPU_FIFO_LEN];
    return b;
}

static PyObject *eu_get_rx_bytes(EspuObject *o, void *Py_UNUSED(c))
{
    return fifo_bytes(o->u.rx, o->u.rx_head, o->u.rx_n);
}

static PyObject *eu_get_tx_bytes(EspuObject *o, void *Py_UNUSED(c))
{
    return fifo_bytes(o->u.tx, o->u.tx_head, o->u.tx_n);
}

static PyObject *eu_get_tx_sink(EspuObject *o, void *Py_UNUSED(c))
{
    Py_INCREF(o->tx_sink);
    return o->tx_sink;
}

/* a bound method of an object with a _native_tx_sink port (the native link's tx_sink) is called
 * through the port, without Python; anything else through Python */
static int eu_set_tx_sink(EspuObject *o, PyObject *v, void *Py_UNUSED(c))
{
    if (!v)
        v = Py_None;
    const dh_tx_sink_ops *ops = NULL;
    void *self = NULL;
    PyObject *owner = NULL, *cap = NULL;
    if (v != Py_None) {
        if (_PyObject_LookupAttr(v, str_eu_self, &owner) < 0)
            return -1;
        if (owner && _PyObject_LookupAttr(owner, str_eu_native_tx, &cap) < 0) {
            Py_DECREF(owner);
            return -1;
        }
        if (cap) {
            dh_port *p = PyCapsule_GetPointer(cap, DH_TX_SINK_CAPSULE);
            Py_DECREF(cap);
            if (!p) {
                Py_XDECREF(owner);
                return -1;
            }
            ops = p->ops;
            self = p->self;
        } else {
            Py_CLEAR(owner);
        }
    }
    Py_INCREF(v);
    Py_XSETREF(o->tx_sink, v);
    Py_XSETREF(o->tx_owner, owner);
    o->tx_ops = ops;
    o->tx_self = self;
    return 0;
}

static PyObject *eu_get_tx_busy(EspuObject *o, void *Py_UNUSED(c))
{
    return PyBool_FromLong(o->u.tx_busy);
}

static int eu_traverse(EspuObject *o, visitproc visit, void *arg)
{
    Py_VISIT(o->machine);
    Py_VISIT(o->sched);
    Py_VISIT(o->irq);
    Py_VISIT(o->base_obj);
    Py_VISIT(o->tx_sink);
    Py_VISIT(o->tx_owner);
    Py_VISIT(o->tx_event);
    Py_VISIT(o->tout_event);
    Py_VISIT(o->cb_tx_done);
    Py_VISIT(o->cb_timeout);
    Py_VISIT(o->cb_rx_char);
    return 0;
}

static int eu_clear(EspuObject *o)
{
    Py_CLEAR(o->machine);
    Py_CLEAR(o->sched);
    Py_CLEAR(o->irq);
    Py_CLEAR(o->base_obj);
    Py_CLEAR(o->tx_sink);
    Py_CLEAR(o->tx_owner);
    o->tx_ops = NULL;
    Py_CLEAR(o->tx_event);
    Py_CLEAR(o->tout_event);
    Py_CLEAR(o->cb_tx_done);
    Py_CLEAR(o->cb_timeout);
    Py_CLEAR(o->cb_rx_char);
    return 0;
}

static void eu_dealloc(EspuObject *o)
{
    PyObject_GC_UnTrack(o);
    eu_clear(o);
    Py_CLEAR(o->n_tx);
    Py_CLEAR(o->n_tout);
    Py_CLEAR(o->n_loop);
    Py_TYPE(o)->tp_free((PyObject *)o);
}

static PyMethodDef eu_methods[] = {
    {"_native_setup", (PyCFunction)(void (*)(void))eu_setup, METH_FASTCALL, NULL},
    {"read", (PyCFunction)(void (*)(void))eu_read, METH_FASTCALL, "read(offset, size=4) -> int"},
    {"write", (PyCFunction)(void (*)(void))eu_write, METH_FASTCALL, "write(offset, size, value)"},
    {"rx_char", (PyCFunction)(void (*)(void))eu_rx_char, METH_FASTCALL,
     "rx_char(byte, framing_error=False): a character's stop bit has arrived (UartEndpoint)."},
    {"rx_start", (PyCFunction)eu_rx_start, METH_O, "rx_start(arrival_ps): a start bit reached us."},
    {"_tx_done", (PyCFunction)eu_tx_done, METH_NOARGS, NULL},
    {"_timeout", (PyCFunction)eu_timeout, METH_NOARGS, NULL},
    {"reset", (PyCFunction)eu_reset, METH_NOARGS, NULL},
    {"bit_time_ps", (PyCFunction)eu_bit_time_ps, METH_NOARGS,
     "The receiver's bit time; None while its clock is off (UartEndpoint)."},
    {"_bit_time", (PyCFunction)eu_bit_time, METH_NOARGS, NULL},
    {"char_time_ps", (PyCFunction)eu_char_time_ps, METH_NOARGS, NULL},
    {"_frame2", (PyCFunction)eu_frame2, METH_NOARGS, NULL},
    {"int_raw", (PyCFunction)eu_int_raw, METH_NOARGS, NULL},
    {"status", (PyCFunction)eu_status, METH_NOARGS, NULL},
    {"_reg", (PyCFunction)eu_reg, METH_O, "_reg(offset) -> the stored register word"},
    {NULL},
};

static PyMemberDef eu_members[] = {
    {"latched", T_UINT, offsetof(EspuObject, u.latched), 0, NULL},
    {"tx_end_ps", T_LONGLONG, offsetof(EspuObject, u.tx_end_ps), READONLY, NULL},
    {"rx_overruns", T_LONGLONG, offsetof(EspuObject, u.rx_overruns), 0, NULL},
    {"tx_overflows", T_LONGLONG, offsetof(EspuObject, u.tx_overflows), 0, NULL},
    {"frame_errors", T_LONGLONG, offsetof(EspuObject, u.frame_errors), 0, NULL},
    {"_rx_busy_until", T_LONGLONG, offsetof(EspuObject, u.rx_busy_until), READONLY, NULL},
    {"unmodeled_accesses", T_LONGLONG, offsetof(EspuObject, u.unmodeled), READONLY, NULL},
    {"_tx_event", T_OBJECT, offsetof(EspuObject, tx_event), READONLY, NULL},
    {"_tout_event", T_OBJECT, offsetof(EspuObject, tout_event), READONLY, NULL},
    {NULL},
};

static PyGetSetDef eu_getset[] = {
    {"_native_mmio", (getter)eu_get_mmio, NULL, "ports.h: dh_mmio_ops", NULL},
    {"_native_uart_rx", (getter)eu_get_rx, NULL, "ports.h: dh_uart_rx_ops", NULL},
    {"tx_sink", (getter)eu_get_tx_sink, (setter)eu_set_tx_sink, NULL, NULL},
    {"tx_busy", (getter)eu_get_tx_busy, NULL, NULL, NULL},
    {"_rx_bytes", (getter)eu_get_rx_bytes, NULL, "the RX FIFO's bytes, oldest first", NULL},
    {"_tx_bytes", (getter)eu_get_tx_bytes, NULL, "the TX FIFO's bytes, oldest first", NULL},
    {NULL},
};

static PyTypeObject EspuType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "duohil.engines.builtin.native._core.Esp32c3Uart",
    .tp_basicsize = sizeof(EspuObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_BASETYPE,
    .tp_new = eu_new,
    .tp_traverse = (traverseproc)eu_traverse,
    .tp_clear = (inquiry)eu_clear,
    .tp_dealloc = (destructor)eu_dealloc,
    .tp_methods = eu_methods,
    .tp_members = eu_members,
    .tp_getset = eu_getset,
    .tp_doc = "esp32c3_uart.py's UART in C (esp32c3_uart.c); subclassed by ESP32C3Uart.",
};

static int add_espu_type(PyObject *m)
{
#define INTERN(var, s) if (!(var = PyUnicode_InternFromString(s))) return -1;
    INTERN(str_eu_level, "level");
    INTERN(str_eu_set, "set");
    INTERN(str_eu_cancel, "cancel");
    INTERN(str_eu_self, "__self__");
    INTERN(str_eu_native_tx, "_native_tx_sink");
#undef INTERN
    if (PyType_Ready(&EspuType) < 0)
        return -1;
    Py_INCREF(&EspuType);
    if (PyModule_AddObject(m, "Esp32c3Uart", (PyObject *)&EspuType) < 0) {
        Py_DECREF(&EspuType);
        return -1;
    }
    return 0;
}

/* == end of Esp32c3Uart [linkc] ================================================================== */

/* == Bus: the MMIO dispatch of one machine (bus.c) [cbus] ==========================================
 * machine.py's Machine owns one: the one MMIO dispatch. Runs of MMIO pages are mapped with
 * uc_mmio_map and C callbacks; an access finds its range in the table (bus.c) and calls the
 * target: a native model's dh_mmio_ops (ports.h) directly, a Python model's read/write (the bound
 * methods bus_target would pick) with one vectorcall. Holes go to the machine's _hole. The CPU's
 * reads are counted (mmio_reads, hang detection); its writes honour suppress_writes (a replayed
 * store) and set writing. An exception from a target is kept in the Uc's _hook_exception (the
 * first one wins) and stops the engine, as the unicorn binding does. */

struct BusObject;
typedef struct BusRun {
    struct BusObject *bus;
    uint64_t base, size;
    struct BusRun *next;
} BusRun;

typedef struct BusObject {
    PyObject_HEAD
    dh_bus_table t;
    PyObject *ranges;          /* the list given to set_ranges: owns every target reference */
    PyObject *hole;            /* machine._hole(address, access) */
    PyObject *uc_obj;          /* the Uc whose engine holds our runs */
    uc_engine *uc;
    BusRun *runs;
    unsigned long long reads;  /* CPU reads of MMIO */
    unsigned long long writes; /* writes that reached a target (Machine.mmio_writes: a CPU's
                                  polling run and masked-spin test compare it, no call per write) */
    long suppress;             /* CPU writes still to drop (a replayed store) */
    int writing;               /* inside a CPU write */
    int native_hits;           /* ranges served by a native model (for tests and reports) */
} BusObject;

static PyObject *str_bus_read, *str_bus_write, *str_hook_exception;

static PyObject *bus_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    if (PyTuple_GET_SIZE(args) || (kwds && PyDict_GET_SIZE(kwds)))
        return PyErr_Format(PyExc_TypeError, "Bus() takes no arguments");
    BusObject *b = (BusObject *)type->tp_alloc(type, 0);
    if (!b)
        return NULL;
    dh_bus_init(&b->t);
    b->ranges = PyList_New(0);
    if (!b->ranges) {
        Py_DECREF(b);
        return NULL;
    }
    return (PyObject *)b;
}

static int bus_traverse(BusObject *b, visitproc visit, void *arg)
{
    Py_VISIT(b->ranges);
    Py_VISIT(b->hole);
    Py_VISIT(b->uc_obj);
    return 0;
}

static int bus_clear(BusObject *b)
{
    /* an open engine may outlive us: never leave it callbacks into freed memory */
    int open = b->uc_obj && engine_open(b->uc_obj);
    while (b->runs) {
        BusRun *r = b->runs;
        b->runs = r->next;
        if (open)
            UC.mem_unmap(b->uc, r->base, r->size);
        PyMem_Free(r);
    }
    dh_bus_clear(&b->t);
    Py_CLEAR(b->ranges);
    Py_CLEAR(b->hole);
    Py_CLEAR(b->uc_obj);
    return 0;
}

static void bus_dealloc(BusObject *b)
{
    PyObject_GC_UnTrack(b);
    bus_clear(b);
    dh_bus_free(&b->t);
    Py_TYPE(b)->tp_free((PyObject *)b);
}

/* The exception set now goes to uc._hook_exception (unless one is there) and the engine stops. */
static void bus_hand_on(BusObject *b)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb && value)
        PyException_SetTraceback(value, tb);
    PyObject *prev = PyObject_GetAttr(b->uc_obj, str_hook_exception);
    if (!prev || prev == Py_None) {
        PyErr_Clear();
        if (PyObject_SetAttr(b->uc_obj, str_hook_exception, value ? value : Py_None) < 0)
            PyErr_WriteUnraisable(b->uc_obj);
    }
    Py_XDECREF(prev);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
    UC.emu_stop(b->uc);
}

static int bus_hole(BusObject *b, uint64_t address, PyObject *access)
{
    PyObject *a = PyLong_FromUnsignedLongLong(address);
    if (!a)
        return -1;
    PyObject *argv[2] = {a, access};
    PyObject *r = PyObject_Vectorcall(b->hole, argv, 2, NULL);
    Py_DECREF(a);
    if (!r)
        return -1;
    Py_DECREF(r);
    return 0;
}

/* A read as the bus sees it: *out is the value (masked to 64 bits); for a Python target, *obj
 * (when obj is not NULL) receives the model's own return value. */
static int bus_do_read(BusObject *b, uint64_t address, unsigned size, uint64_t *out, PyObject **obj)
{
    const dh_bus_range *r = dh_bus_find(&b->t, address);
    if (!r) {
        *out = 0;
        return bus_hole(b, address, str_bus_read);
    }
    if (r->ops)
        return r->ops->read(r->self, (uint32_t)(address - r->base), size, out);
    PyObject *fn = (PyObject *)r->rd;
    PyObject *off = PyLong_FromUnsignedLongLong(address - r->base);
    PyObject *sz = off ? PyLong_FromLong((long)size) : NULL;
    PyObject *v = NULL;
    if (sz) {
        PyObject *argv[2] = {off, sz};
        Py_INCREF(fn);                          /* a target may replace the table under us */
        v = PyObject_Vectorcall(fn, argv, 2, NULL);
        Py_DECREF(fn);
    }
    Py_XDECREF(off);
    Py_XDECREF(sz);
    if (!v)
        return -1;
    unsigned long long x = PyLong_AsUnsignedLongLongMask(v);   /* what ctypes' c_uint64 does */
    if (x == (unsigned long long)-1 && PyErr_Occurred()) {
        Py_DECREF(v);
        return -1;
    }
    *out = x;
    if (obj)
        *obj = v;
    else
        Py_DECREF(v);
    return 0;
}

/* A write as Machine.bus_write does it: counted (mmio_writes), then the target; a hole to _hole.
 * `vobj` is the value as a Python object when the caller has one. */
static int bus_do_write(BusObject *b, uint64_t address, unsigned size, uint64_t value, PyObject *vobj)
{
    const dh_bus_range *r = dh_bus_find(&b->t, address);
    if (!r)
        return bus_hole(b, address, str_bus_write);
    b->writes++;
    if (r->ops)
        return r->ops->write(r->self, (uint32_t)(address - r->base), size, value);
    PyObject *fn = (PyObject *)r->wr;
    PyObject *off = PyLong_FromUnsignedLongLong(address - r->base);
    PyObject *sz = off ? PyLong_FromLong((long)size) : NULL;
    PyObject *v = NULL;
    if (vobj)
        Py_INCREF(vobj);
    else if (sz)
        vobj = PyLong_FromUnsignedLongLong(value);
    if (vobj) {
        PyObject *argv[3] = {off, sz, vobj};
        Py_INCREF(fn);
        v = PyObject_Vectorcall(fn, argv, 3, NULL);
        Py_DECREF(fn);
        Py_DECREF(vobj);
    }
    Py_XDECREF(off);
    Py_XDECREF(sz);
    if (!v)
        return -1;
    Py_DECREF(v);
    return 0;
}

static uint64_t bus_mmio_read(uc_engine *uc, uint64_t offset, unsigned size, void *ud)
{
    BusRun *run = (BusRun *)ud;
    BusObject *b = run->bus;
    PyGILState_STATE g = PyGILState_UNLOCKED;
    int took = gil_enter(uc, &g);                                              /* [gilrun] */
    uint64_t v = 0;
    b->reads++;                                  /* hang detection: a loop that reads MMIO waits */
    if (bus_do_read(b, run->base + offset, size, &v, NULL) < 0) {
        bus_hand_on(b);
        v = 0;
    }
    gil_leave(took, g);
    return v;
}

static void bus_mmio_write(uc_engine *uc, uint64_t offset, unsigned size, uint64_t value, void *ud)
{
    BusRun *run = (BusRun *)ud;
    BusObject *b = run->bus;
    PyGILState_STATE g = PyGILState_UNLOCKED;
    int took = gil_enter(uc, &g);                                              /* [gilrun] */
    if (b->suppress) {                           /* a replayed store (machine.py) */
        b->suppress--;
    } else {
        b->writing = 1;
        int rc = bus_do_write(b, run->base + offset, size, value, NULL);
        b->writing = 0;
        if (rc < 0)
            bus_hand_on(b);
    }
    gil_leave(took, g);
}

static int bus_u64(PyObject *o, uint64_t *out)
{
    unsigned long long v = PyLong_AsUnsignedLongLong(o);
    if (v == (unsigned long long)-1 && PyErr_Occurred())
        return -1;
    *out = v;
    return 0;
}

/* set_ranges([(base, end, read, write, native_capsule or None, owner), ...]) */
static PyObject *bus_set_ranges(BusObject *b, PyObject *arg)
{
    if (!PyList_Check(arg))
        return PyErr_Format(PyExc_TypeError, "set_ranges: a list of (base, end, read, write, capsule, owner)");
    PyObject *keep = PyList_GetSlice(arg, 0, PyList_GET_SIZE(arg));    /* our own copy */
    if (!keep)
        return NULL;
    dh_bus_table t;
    dh_bus_init(&t);
    int native = 0;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(keep); i++) {
        PyObject *it = PyList_GET_ITEM(keep, i);
        dh_bus_range r;
        memset(&r, 0, sizeof r);
        if (!PyTuple_Check(it) || PyTuple_GET_SIZE(it) != 6) {
            PyErr_Format(PyExc_TypeError, "set_ranges: item %zd is not (base, end, read, write, capsule, owner)", i);
            goto fail;
        }
        if (bus_u64(PyTuple_GET_ITEM(it, 0), &r.base) < 0 || bus_u64(PyTuple_GET_ITEM(it, 1), &r.end) < 0)
            goto fail;
        PyObject *cap = PyTuple_GET_ITEM(it, 4);
        if (cap != Py_None) {
            dh_port *port = PyCapsule_GetPointer(cap, DH_MMIO_CAPSULE);
            if (!port)
                goto fail;
            r.ops = (const dh_mmio_ops *)port->ops;
            r.self = port->self;
            native++;
        } else if (!PyCallable_Check(PyTuple_GET_ITEM(it, 2)) || !PyCallable_Check(PyTuple_GET_ITEM(it, 3))) {
            PyErr_Format(PyExc_TypeError, "set_ranges: item %zd: read and write must be callable", i);
            goto fail;
        }
        r.rd = PyTuple_GET_ITEM(it, 2);
        r.wr = PyTuple_GET_ITEM(it, 3);
        r.owner = PyTuple_GET_ITEM(it, 5);
        int why = 0;
        if (dh_bus_add(&t, &r, &why) < 0) {
            if (why == 2)
                PyErr_NoMemory();
            else
                PyErr_Format(PyExc_ValueError, "set_ranges: %#llx..%#llx overlaps another range",
                             (unsigned long long)r.base, (unsigned long long)r.end);
            goto fail;
        }
    }
    dh_bus_free(&b->t);
    b->t = t;
    b->native_hits = native;
    Py_XSETREF(b->ranges, keep);
    Py_RETURN_NONE;
fail:
    dh_bus_free(&t);
    Py_DECREF(keep);
    return NULL;
}

/* set_hooks(hole): machine._hole(address, access), called for an address no range holds */
static PyObject *bus_set_hooks(BusObject *b, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 1 || !PyCallable_Check(args[0]))
        return PyErr_Format(PyExc_TypeError, "set_hooks(hole)");
    Py_INCREF(args[0]);
    Py_XSETREF(b->hole, args[0]);
    Py_RETURN_NONE;
}

/* map(uc, uch, start, size): a run of MMIO pages on the engine, with our C callbacks */
static PyObject *bus_map(BusObject *b, PyObject *const *args, Py_ssize_t nargs)
{
    uint64_t start, size;
    if (nargs != 4)
        return PyErr_Format(PyExc_TypeError, "map(uc, uch, start, size)");
    if (need_uc() < 0)
        return NULL;
    void *uch = PyLong_AsVoidPtr(args[1]);
    if (!uch)
        return PyErr_Occurred() ? NULL : PyErr_Format(PyExc_ValueError, "map: null uc handle");
    if (bus_u64(args[2], &start) < 0 || bus_u64(args[3], &size) < 0)
        return NULL;
    if (!b->hole)
        return PyErr_Format(PyExc_RuntimeError, "map: set_hooks first");
    if (b->uc_obj && (b->uc_obj != args[0] || b->uc != (uc_engine *)uch))
        return PyErr_Format(PyExc_ValueError, "map: this bus already serves another engine");
    BusRun *run = PyMem_Malloc(sizeof *run);
    if (!run)
        return PyErr_NoMemory();
    run->bus = b;
    run->base = start;
    run->size = size;
    uc_err err = UC.mmio_map((uc_engine *)uch, start, size, bus_mmio_read, run, bus_mmio_write, run);
    if (err != UC_ERR_OK) {
        PyMem_Free(run);
        PyObject *mod = PyImport_ImportModule("unicorn");
        PyObject *cls = mod ? PyObject_GetAttrString(mod, "UcError") : NULL;
        Py_XDECREF(mod);
        if (cls) {
            PyObject *e = PyObject_CallFunction(cls, "i", (int)err);
            if (e) {
                PyErr_SetObject(cls, e);
                Py_DECREF(e);
            }
            Py_DECREF(cls);
        }
        return NULL;
    }
    run->next = b->runs;
    b->runs = run;
    if (!b->uc_obj) {
        Py_INCREF(args[0]);
        b->uc_obj = args[0];
        b->uc = (uc_engine *)uch;
    }
    Py_RETURN_NONE;
}

static int bus_args(PyObject *const *args, Py_ssize_t nargs, Py_ssize_t want, uint64_t *addr, unsigned *size)
{
    if (nargs != want) {
        PyErr_Format(PyExc_TypeError, want == 2 ? "read(address, size)" : "write(address, size, value)");
        return -1;
    }
    long s;
    if (bus_u64(args[0], addr) < 0 || ((s = PyLong_AsLong(args[1])) == -1 && PyErr_Occurred()))
        return -1;
    *size = (unsigned)s;
    return 0;
}

/* read(address, size): Machine.bus_read (DMA, tests): not counted as a CPU read */
static PyObject *bus_read(BusObject *b, PyObject *const *args, Py_ssize_t nargs)
{
    uint64_t addr, v = 0;
    unsigned size;
    PyObject *obj = NULL;
    if (bus_args(args, nargs, 2, &addr, &size) < 0 || bus_do_read(b, addr, size, &v, &obj) < 0)
        return NULL;
    return obj ? obj : PyLong_FromUnsignedLongLong(v);
}

/* write(address, size, value): Machine.bus_write (no suppression, not a CPU write) */
static PyObject *bus_write(BusObject *b, PyObject *const *args, Py_ssize_t nargs)
{
    uint64_t addr;
    unsigned size;
    if (bus_args(args, nargs, 3, &addr, &size) < 0)
        return NULL;
    unsigned long long v = PyLong_AsUnsignedLongLongMask(args[2]);
    if (v == (unsigned long long)-1 && PyErr_Occurred())
        return NULL;
    if (bus_do_write(b, addr, size, v, args[2]) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* target(address) -> the owner of the range holding address and whether it is served natively,
 * or None */
static PyObject *bus_target(BusObject *b, PyObject *arg)
{
    uint64_t addr;
    if (bus_u64(arg, &addr) < 0)
        return NULL;
    const dh_bus_range *r = dh_bus_find(&b->t, addr);
    if (!r)
        Py_RETURN_NONE;
    return Py_BuildValue("(OO)", (PyObject *)r->owner, r->ops ? Py_True : Py_False);
}

/* bench_reads(address, size, n): n CPU-style reads from C (the dispatch without the engine) */
static PyObject *bus_bench_reads(BusObject *b, PyObject *const *args, Py_ssize_t nargs)
{
    uint64_t addr, v = 0;
    unsigned size;
    if (nargs != 3)
        return PyErr_Format(PyExc_TypeError, "bench_reads(address, size, n)");
    long long n = PyLong_AsLongLong(args[2]);
    if (bus_args(args, 2, 2, &addr, &size) < 0 || (n == -1 && PyErr_Occurred()))
        return NULL;
    for (long long i = 0; i < n; i++)
        if (bus_do_read(b, addr, size, &v, NULL) < 0)
            return NULL;
    return PyLong_FromUnsignedLongLong(v);
}

static PyObject *bus_get_reads(BusObject *b, void *Py_UNUSED(c))
{
    return PyLong_FromUnsignedLongLong(b->reads);
}

static int bus_set_reads(BusObject *b, PyObject *v, void *Py_UNUSED(c))
{
    uint64_t x;
    if (!v)
        return PyErr_Format(PyExc_AttributeError, "cannot delete reads"), -1;
    if (bus_u64(v, &x) < 0)
        return -1;
    b->reads = x;
    return 0;
}

static PyObject *bus_get_writes(BusObject *b, void *Py_UNUSED(c))
{
    return PyLong_FromUnsignedLongLong(b->writes);
}

static int bus_set_writes(BusObject *b, PyObject *v, void *Py_UNUSED(c))
{
    uint64_t x;
    if (!v)
        return PyErr_Format(PyExc_AttributeError, "cannot delete writes"), -1;
    if (bus_u64(v, &x) < 0)
        return -1;
    b->writes = x;
    return 0;
}

static PyObject *bus_get_suppress(BusObject *b, void *Py_UNUSED(c))
{
    return PyLong_FromLong(b->suppress);
}

static int bus_set_suppress(BusObject *b, PyObject *v, void *Py_UNUSED(c))
{
    long x;
    if (!v)
        return PyErr_Format(PyExc_AttributeError, "cannot delete suppress_writes"), -1;
    if ((x = PyLong_AsLong(v)) == -1 && PyErr_Occurred())
        return -1;
    b->suppress = x;
    return 0;
}

static PyObject *bus_get_writing(BusObject *b, void *Py_UNUSED(c))
{
    return PyBool_FromLong(b->writing);
}

static int bus_set_writing(BusObject *b, PyObject *v, void *Py_UNUSED(c))
{
    int x;
    if (!v)
        return PyErr_Format(PyExc_AttributeError, "cannot delete writing"), -1;
    if ((x = PyObject_IsTrue(v)) < 0)
        return -1;
    b->writing = x;
    return 0;
}

static PyObject *bus_get_native(BusObject *b, void *Py_UNUSED(c))
{
    return PyLong_FromLong(b->native_hits);
}

static PyGetSetDef bus_getset[] = {
    {"reads", (getter)bus_get_reads, (setter)bus_set_reads, "CPU reads of MMIO (Machine.mmio_reads)", NULL},
    {"writes", (getter)bus_get_writes, (setter)bus_set_writes, "writes that reached a target (Machine.mmio_writes)", NULL},
    {"suppress_writes", (getter)bus_get_suppress, (setter)bus_set_suppress,
     "CPU writes still to drop (Machine.suppress_writes)", NULL},
    {"writing", (getter)bus_get_writing, (setter)bus_set_writing, "inside a CPU write (Machine.writing)", NULL},
    {"native_ranges", (getter)bus_get_native, NULL, "how many ranges a native model serves", NULL},
    {NULL},
};

static PyMethodDef bus_methods[] = {
    {"set_ranges", (PyCFunction)bus_set_ranges, METH_O,
     "set_ranges([(base, end, read, write, capsule or None, owner)]): the table, replaced whole"},
    {"set_hooks", (PyCFunction)(void (*)(void))bus_set_hooks, METH_FASTCALL,
     "set_hooks(hole): where an address no range holds goes"},
    {"map", (PyCFunction)(void (*)(void))bus_map, METH_FASTCALL,
     "map(uc, uch, start, size): map a run of MMIO pages with the C callbacks"},
    {"read", (PyCFunction)(void (*)(void))bus_read, METH_FASTCALL, "read(address, size) -> value"},
    {"write", (PyCFunction)(void (*)(void))bus_write, METH_FASTCALL, "write(address, size, value)"},
    {"target", (PyCFunction)bus_target, METH_O, "target(address) -> (owner, native) or None"},
    {"bench_reads", (PyCFunction)(void (*)(void))bus_bench_reads, METH_FASTCALL,
     "bench_reads(address, size, n) -> the last value: n reads dispatched from C"},
    {NULL},
};

static PyTypeObject BusType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "duohil.engines.builtin.native._core.Bus",
    .tp_basicsize = sizeof(BusObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Bus(): one machine's MMIO dispatch (machine.py's Machine._bus).",
    .tp_new = bus_new,
    .tp_dealloc = (destructor)bus_dealloc,
    .tp_traverse = (traverseproc)bus_traverse,
    .tp_clear = (inquiry)bus_clear,
    .tp_methods = bus_methods,
    .tp_getset = bus_getset,
};

/* [rvtake] One more in the machine's write count (Machine.mmio_writes): the C bus's own counter
 * (its _bus; the property would run a Python lambda), the attribute of a machine object without
 * one (a test's). 0, or -1 with an error. */
static PyObject *str_mc_bus, *str_mc_mmio_writes;

/* The machine's C bus (a new reference) in *bus, NULL when its _bus is none (a test's machine
 * object); 0, or -1 with an error. */
static int machine_bus(PyObject *machine, PyObject **bus)
{
    if (!str_mc_bus && (!(str_mc_bus = PyUnicode_InternFromString("_bus"))
                        || !(str_mc_mmio_writes = PyUnicode_InternFromString("mmio_writes"))))
        return -1;
    if (_PyObject_LookupAttr(machine, str_mc_bus, bus) < 0)
        return -1;
    if (*bus && Py_TYPE(*bus) != &BusType)
        Py_CLEAR(*bus);
    return 0;
}

static int machine_count_write(PyObject *machine)
{
    PyObject *bus;
    if (machine_bus(machine, &bus) < 0)
        return -1;
    if (bus) {
        ((BusObject *)bus)->writes++;
        Py_DECREF(bus);
        return 0;
    }
    PyObject *n = PyObject_GetAttr(machine, str_mc_mmio_writes);
    if (!n)
        return -1;
    PyObject *one = PyLong_FromLong(1);
    PyObject *n1 = one ? PyNumber_Add(n, one) : NULL;
    Py_XDECREF(one);
    Py_DECREF(n);
    if (!n1)
        return -1;
    int rc = PyObject_SetAttr(machine, str_mc_mmio_writes, n1);
    Py_DECREF(n1);
    return rc;
}

/* The machine's write count (Machine.mmio_writes): the C bus's counter, else the attribute. */
static int machine_mmio_writes(PyObject *machine, int64_t *out)
{
    PyObject *bus;
    if (machine_bus(machine, &bus) < 0)
        return -1;
    if (bus) {
        *out = (int64_t)((BusObject *)bus)->writes;
        Py_DECREF(bus);
        return 0;
    }
    return get_i64(machine, str_mc_mmio_writes, out);
}

/* == [pollc] poll-skip in C (cpu.py's poll_hint) =================================================
 * A model whose status register was read and cannot change before some time tells the CPU
 * (the peer UART's and the USART's status reads, ~800 a virtual second of nominal traffic, and a
 * Python model's Peripheral.poll_hint). The rule: only while the CPU executes; an MMIO write
 * since the last hint (the machine's write count moved) starts a new run; the same address again
 * counts one more, another address starts a run of one; at CS_POLL_PARK_AFTER in a row with no
 * interrupt pending the core parks until wake_ps (None: until the next event): parked, park_until,
 * scheduler.park(cpu), uc.emu_stop(). */
static PyObject *str_pc_uc, *str_pc_emu_stop, *str_pc_park;

static int cs_poll_hint(PyObject *cpu, PyObject *addr, int has_wake, int64_t wake)
{
    CpuStateObject *c = CS(cpu);
    if (!c->executing)
        return 0;
    dh_opt64 a = {0, 0};
    if (addr != Py_None) {
        int overflow;
        long long v = PyLong_AsLongLongAndOverflow(addr, &overflow);
        if (v == -1 && PyErr_Occurred())
            return -1;
        if (overflow) {
            PyErr_Format(PyExc_OverflowError, "poll_hint: address %R is beyond 64 bits", addr);
            return -1;
        }
        a = (dh_opt64){v, 1};
    }
    int64_t writes;
    if (machine_mmio_writes(c->machine ? c->machine : Py_None, &writes) < 0)
        return -1;
    if (writes != c->poll_writes) {      /* a write since the last hint broke the run */
        c->poll_writes = writes;
        c->poll_addr.set = 0;
        c->poll_count = 0;
    }
    if (a.set == c->poll_addr.set && (!a.set || a.v == c->poll_addr.v)) {
        c->poll_count += 1;
    } else {
        c->poll_addr = a;
        c->poll_count = 1;
    }
    if (c->poll_count < CS_POLL_PARK_AFTER)
        return 0;
    int ip = call_truth_m(cpu, c->m_pending, str_interrupt_pending);
    if (ip)
        return ip < 0 ? -1 : 0;
    if (!str_pc_uc && (!(str_pc_uc = PyUnicode_InternFromString("uc"))
                       || !(str_pc_emu_stop = PyUnicode_InternFromString("emu_stop"))
                       || !(str_pc_park = PyUnicode_InternFromString("park"))))
        return -1;
    c->parked = 1;
    c->park_until = (dh_opt64){wake, (char)(has_wake != 0)};
    PyObject *sched = PyObject_GetAttr(c->machine ? c->machine : Py_None, str_scheduler);
    if (!sched)
        return -1;
    PyObject *r = PyObject_TypeCheck(sched, &SchedType) ? sched_park((SchedObject *)sched, cpu)
                                                        : PyObject_CallMethodOneArg(sched, str_pc_park, cpu);
    Py_DECREF(sched);
    if (!r)
        return -1;
    Py_DECREF(r);
    PyObject *uc = PyObject_GetAttr(cpu, str_pc_uc);
    r = uc ? PyObject_CallMethodNoArgs(uc, str_pc_emu_stop) : NULL;
    Py_XDECREF(uc);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

static PyObject *cs_poll_hint_m(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2)
        return PyErr_Format(PyExc_TypeError, "poll_hint(addr, wake_ps) takes 2 arguments");
    int64_t wake = 0;
    if (args[1] != Py_None && as_i64(args[1], &wake) < 0)
        return NULL;
    if (cs_poll_hint(self, args[0], args[1] != Py_None, wake) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* cpu.poll_hint(addr, wake) from a C unit: the C rule when the CPU's class keeps CpuState's, the
 * method (a test's or a user's CPU) otherwise */
static int cpu_poll_hint(PyObject *cpu, PyObject *addr, int has_wake, int64_t wake)
{
    if (cs_of(cpu) && _PyType_Lookup(Py_TYPE(cpu), str_pc_poll_hint) == cs_poll_hint_descr)
        return cs_poll_hint(cpu, addr, has_wake, wake);
    PyObject *w = has_wake ? PyLong_FromLongLong(wake) : Py_NewRef(Py_None);
    PyObject *r = w ? PyObject_CallMethodObjArgs(cpu, str_pc_poll_hint, addr, w, NULL) : NULL;
    Py_XDECREF(w);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

/* == end of [pollc] ============================================================================== */

static int add_bus_type(PyObject *m)
{
    if (!(str_bus_read = PyUnicode_InternFromString("read"))
        || !(str_bus_write = PyUnicode_InternFromString("write"))
        || !(str_hook_exception = PyUnicode_InternFromString("_hook_exception"))
        || !(str_level = PyUnicode_InternFromString("level"))
        || !(str_set = PyUnicode_InternFromString("set"))
        || !(str_cancel = PyUnicode_InternFromString("cancel"))
        || !(str_time = PyUnicode_InternFromString("time"))
        || !(str_name_kw = Py_BuildValue("(s)", "name")))
        return -1;
    if (PyType_Ready(&BusType) < 0)
        return -1;
    Py_INCREF(&BusType);
    if (PyModule_AddObject(m, "Bus", (PyObject *)&BusType) < 0) {
        Py_DECREF(&BusType);
        return -1;
    }
    return 0;
}

/* == end of Bus [cbus] ============================================================================ */

/* == DMA streams and DMAMUX [dmac] ===============================================================
 *
 * _core.Dma and _core.Dmamux: the DMA streams' and DMAMUX1's state lives in dma.c and dmamux.c
 * (the one copy); these types are the bases of the Python classes Stm32DmaNative /
 * Stm32DmamuxNative, so read/write/set_input/reset are C methods of the peripheral itself.
 * The hosts below give the models what they reach in the machine: the bus
 * (machine.bus_target / bus_write, machine.dma_port: its `_native_dma_port` capsule when it has
 * one, looked up again whenever machine.dma_port is another object), the scheduler
 * (scheduler.at(t, fn, name=...) with C callables, same times, names and order), the outputs
 * (_core.Signal objects driven in C; any other signal object through its set method), and the
 * event log (machine.record). Capsules `_native_mmio` and
 * `_native_input` (ports.h) let other C units call them directly.
 */
#include "dma.h"
#include "dmamux.h"
#include "ports.h"

static PyObject *dm_s_set, *dm_s_bus_target,
    *dm_s_bus_write, *dm_s_dma_port, *dm_s_read, *dm_s_write, *dm_s_native_dma_port,
    *dm_s_peripheral_at, *dm_s_memories, *dm_s_scheduler, *dm_s_at, *dm_s_cancel,
    *dm_s_record, *dm_s_kw_name, *dm_s_kw_dma_stream, *dm_s_te_kind;

static PyTypeObject DmaType;

/* -- outputs: a _core.Signal ([usartc], below) gets its edge in C, any other signal object its
 * set(level) method -------------------------------------------------------------------------- */

static PyTypeObject SignalType;
static int signal_set_obj(PyObject *sig, int level);

static int dm_signal_set(PyObject *sig, int level)
{
    if (Py_TYPE(sig) == &SignalType)
        return signal_set_obj(sig, level);
    PyObject *args[2] = {sig, level ? Py_True : Py_False};
    PyObject *r = PyObject_VectorcallMethod(dm_s_set, args, 2, NULL);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

/* -- Dma ------------------------------------------------------------------------------------------ */

typedef struct {
    PyObject_HEAD
    dh_dma m;
    PyObject *machine, *name;
    PyObject *irq[DH_DMA_STREAMS];
    PyObject *svc_call[DH_DMA_STREAMS];       /* the callables of the service events */
    PyObject *svc_event[DH_DMA_STREAMS];      /* the scheduled service event, or NULL */
    PyObject *pending[DH_DMA_STREAMS];        /* delayed flag deliveries (events), oldest first */
    PyObject *svc_name[DH_DMA_STREAMS];
    PyObject *flag_name[DH_DMA_STREAMS][2];   /* ".S<s>.HTIF", ".S<s>.TCIF" */
    PyObject *port;                           /* machine.dma_port as last seen */
    const dh_dmaport_ops *port_ops;           /* its capsule's operations, or NULL */
    void *port_self;
    dh_port mmio_port, input_port;
    /* [entryc] the machine's C bus (_set_bus, when its bus_target/bus_write are Machine's):
     * a transfer finds its register in the bus table instead of calling machine.bus_target */
    PyObject *bus;
} DmaObject;

/* a scheduled call into a Dma: its service (kind 0) or one delayed flag delivery (kind 1) */
typedef struct {
    PyObject_HEAD
    PyObject *owner;
    int kind, s, flag, end;
    uint32_t gen;
} DmaCallObject;

static PyTypeObject DmaCallType;

static PyObject *dmacall_new(PyObject *owner, int kind, int s, int flag, int end, uint32_t gen)
{
    DmaCallObject *c = PyObject_GC_New(DmaCallObject, &DmaCallType);
    if (!c)
        return NULL;
    Py_INCREF(owner);
    c->owner = owner;
    c->kind = kind;
    c->s = s;
    c->flag = flag;
    c->end = end;
    c->gen = gen;
    PyObject_GC_Track(c);
    return (PyObject *)c;
}

static int dmacall_traverse(DmaCallObject *c, visitproc visit, void *arg)
{
    Py_VISIT(c->owner);
    return 0;
}

static int dmacall_clear(DmaCallObject *c)
{
    Py_CLEAR(c->owner);
    return 0;
}

static void dmacall_dealloc(DmaCallObject *c)
{
    PyObject_GC_UnTrack(c);
    dmacall_clear(c);
    PyObject_GC_Del(c);
}

static PyObject *dmacall_call(DmaCallObject *c, PyObject *Py_UNUSED(args), PyObject *Py_UNUSED(kw))
{
    if (!c->owner)
        Py_RETURN_NONE;
    DmaObject *o = (DmaObject *)c->owner;
    Py_INCREF(o);
    int r;
    if (c->kind == 0) {
        r = dh_dma_service(&o->m, c->s);
    } else {
        PyObject *p = o->pending[c->s];            /* the oldest delivery is this one */
        r = 0;
        if (p && PyList_GET_SIZE(p) && PyList_SetSlice(p, 0, 1, NULL) < 0)
            r = -1;
        if (r == 0)
            r = dh_dma_deliver(&o->m, c->s, c->flag, c->end, c->gen, 1);
    }
    Py_DECREF(o);
    if (r < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyTypeObject DmaCallType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "duohil.engines.builtin.native._core.DmaCall",
    .tp_basicsize = sizeof(DmaCallObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "A DMA stream's scheduled service or flag delivery (an event's fn).",
    .tp_dealloc = (destructor)dmacall_dealloc,
    .tp_traverse = (traverseproc)dmacall_traverse,
    .tp_clear = (inquiry)dmacall_clear,
    .tp_call = (ternaryfunc)dmacall_call,
};

/* machine.now() */
static int dm_now(PyObject *machine, int64_t *t)
{
    return machine_now(machine, t);
}

/* machine.scheduler.at(t, fn, name=name) */
static PyObject *dm_at(PyObject *machine, int64_t t, PyObject *fn, PyObject *name)
{
    if (PyObject_TypeCheck(machine, &MachineStateType)) {                  /* [machstate] */
        PyObject *sc = ((MachineStateObject *)machine)->scheduler;
        if (sc && PyObject_TypeCheck(sc, &SchedType)) {
            PyObject *none = PyTuple_New(0);
            PyObject *ev = none ? c_at(sc, t, fn, none, name) : NULL;
            Py_XDECREF(none);
            return ev;
        }
    }
    PyObject *sched = PyObject_GetAttr(machine, dm_s_scheduler);
    if (!sched)
        return NULL;
    PyObject *pt = PyLong_FromLongLong(t);
    if (!pt) {
        Py_DECREF(sched);
        return NULL;
    }
    PyObject *args[4] = {sched, pt, fn, name};
    PyObject *ev = PyObject_VectorcallMethod(dm_s_at, args, 3, dm_s_kw_name);
    Py_DECREF(pt);
    Py_DECREF(sched);
    return ev;
}

static int dm_cancel(PyObject *ev)
{
    PyObject *r = PyObject_VectorcallMethod(dm_s_cancel, &ev, 1, NULL);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

/* machine.bus_target(address): a new reference (None: no peripheral there) */
static PyObject *dm_bus_target(PyObject *machine, uint32_t address)
{
    PyObject *a = PyLong_FromUnsignedLong(address);
    if (!a)
        return NULL;
    PyObject *args[2] = {machine, a};
    PyObject *hit = PyObject_VectorcallMethod(dm_s_bus_target, args, 2, NULL);
    Py_DECREF(a);
    return hit;
}

/* machine.dma_port, with its capsule's operations when it has one (re-read when it changed) */
static int dm_port(DmaObject *o, PyObject **port)
{
    PyObject *p = PyObject_GetAttr(o->machine, dm_s_dma_port);
    if (!p)
        return -1;
    if (p != o->port) {
        PyObject *cap;
        if (_PyObject_LookupAttr(p, dm_s_native_dma_port, &cap) < 0) {
            Py_DECREF(p);
            return -1;
        }
        const dh_port *dp = NULL;
        if (cap) {
            dp = PyCapsule_GetPointer(cap, DH_DMAPORT_CAPSULE);
            Py_DECREF(cap);
            if (!dp) {
                Py_DECREF(p);
                return -1;
            }
        }
        Py_INCREF(p);
        Py_XSETREF(o->port, p);
        o->port_ops = dp ? dp->ops : NULL;
        o->port_self = dp ? dp->self : NULL;
    }
    *port = p;
    return 0;
}

static int dm_host_bus_read(void *h, uint32_t address, unsigned size, uint8_t *buf)
{
    DmaObject *o = h;
    if (o->bus && dh_bus_find(&((BusObject *)o->bus)->t, address)) {
        /* a register: its read, as bus_target's (read, offset) would be called */
        PyObject *bus = Py_NewRef(o->bus);
        uint64_t x;
        int rc = bus_do_read((BusObject *)bus, address, size, &x, NULL);
        Py_DECREF(bus);
        if (rc < 0)
            return -1;
        if (size < 8 && x >> (8 * size)) {
            PyErr_SetString(PyExc_OverflowError, "int too big to convert");
            return -1;
        }
        for (unsigned i = 0; i < size; i++)
            buf[i] = (uint8_t)(x >> (8 * i));
        return 0;
    }
    PyObject *hit = o->bus ? Py_NewRef(Py_None) : dm_bus_target(o->machine, address);
    if (!hit)
        return -1;
    if (hit != Py_None) {                      /* a register: its read, side effects and all */
        if (!PyTuple_Check(hit) || PyTuple_GET_SIZE(hit) < 3) {
            Py_DECREF(hit);
            PyErr_SetString(PyExc_TypeError, "machine.bus_target must give (read, write, offset)");
            return -1;
        }
        PyObject *sz = PyLong_FromUnsignedLong(size);
        if (!sz) {
            Py_DECREF(hit);
            return -1;
        }
        PyObject *args[2] = {PyTuple_GET_ITEM(hit, 2), sz};
        PyObject *v = PyObject_Vectorcall(PyTuple_GET_ITEM(hit, 0), args, 2, NULL);
        Py_DECREF(sz);
        Py_DECREF(hit);
        if (!v)
            return -1;
        unsigned long long x = PyLong_AsUnsignedLongLong(v);   /* int.to_bytes(size, "little") */
        Py_DECREF(v);
        if (x == (unsigned long long)-1 && PyErr_Occurred())
            return -1;
        if (size < 8 && x >> (8 * size)) {
            PyErr_SetString(PyExc_OverflowError, "int too big to convert");
            return -1;
        }
        for (unsigned i = 0; i < size; i++)
            buf[i] = (uint8_t)(x >> (8 * i));
        return 0;
    }
    Py_DECREF(hit);
    PyObject *port;
    if (dm_port(o, &port) < 0)
        return -1;
    if (o->port_ops) {
        int r = ((const dh_dmaport_ops *)o->port_ops)->read(o->port_self, address, buf, size);
        Py_DECREF(port);
        return r;
    }
    PyObject *a = PyLong_FromUnsignedLong(address), *sz = a ? PyLong_FromUnsignedLong(size) : NULL;
    PyObject *data = NULL;
    if (sz) {
        PyObject *args[3] = {port, a, sz};
        data = PyObject_VectorcallMethod(dm_s_read, args, 3, NULL);
    }
    Py_XDECREF(a);
    Py_XDECREF(sz);
    Py_DECREF(port);
    if (!data)
        return -1;
    Py_buffer view;
    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0) {
        Py_DECREF(data);
        return -1;
    }
    int rc = 0;
    if (view.len != (Py_ssize_t)size) {
        PyErr_Format(PyExc_ValueError, "dma_port.read(%#x, %u) gave %zd bytes", address, size, view.len);
        rc = -1;
    } else {
        memcpy(buf, view.buf, size);
    }
    PyBuffer_Release(&view);
    Py_DECREF(data);
    return rc;
}

static int dm_host_bus_write(void *h, uint32_t address, unsigned size, const uint8_t *buf)
{
    DmaObject *o = h;
    if (o->bus && dh_bus_find(&((BusObject *)o->bus)->t, address)) {
        /* machine.bus_write(address, size, value) as Machine does it: the C bus's write */
        unsigned long long x = 0;
        for (unsigned i = 0; i < size; i++)
            x |= (unsigned long long)buf[i] << (8 * i);
        PyObject *bus = Py_NewRef(o->bus);
        int rc = bus_do_write((BusObject *)bus, address, size, x, NULL);
        Py_DECREF(bus);
        return rc;
    }
    PyObject *hit = o->bus ? Py_NewRef(Py_None) : dm_bus_target(o->machine, address);
    if (!hit)
        return -1;
    int reg = hit != Py_None;
    Py_DECREF(hit);
    if (reg) {                                 /* machine.bus_write(address, size, value) */
        unsigned long long x = 0;
        for (unsigned i = 0; i < size; i++)
            x |= (unsigned long long)buf[i] << (8 * i);
        PyObject *a = PyLong_FromUnsignedLong(address), *sz = PyLong_FromUnsignedLong(size),
                 *v = PyLong_FromUnsignedLongLong(x);
        PyObject *r = NULL;
        if (a && sz && v) {
            PyObject *args[4] = {o->machine, a, sz, v};
            r = PyObject_VectorcallMethod(dm_s_bus_write, args, 4, NULL);
        }
        Py_XDECREF(a);
        Py_XDECREF(sz);
        Py_XDECREF(v);
        Py_XDECREF(r);
        return r ? 0 : -1;
    }
    PyObject *port;
    if (dm_port(o, &port) < 0)
        return -1;
    if (o->port_ops) {
        int r = ((const dh_dmaport_ops *)o->port_ops)->write(o->port_self, address, buf, size);
        Py_DECREF(port);
        return r;
    }
    PyObject *a = PyLong_FromUnsignedLong(address);
    PyObject *data = a ? PyBytes_FromStringAndSize((const char *)buf, size) : NULL;
    PyObject *r = NULL;
    if (data) {
        PyObject *args[3] = {port, a, data};
        r = PyObject_VectorcallMethod(dm_s_write, args, 3, NULL);
    }
    Py_XDECREF(a);
    Py_XDECREF(data);
    Py_DECREF(port);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

/* reachable past the TCM check: a peripheral at address, or a memory holding it */
static int dm_host_mapped(void *h, uint32_t address, int64_t size, int *ok)
{
    DmaObject *o = h;
    PyObject *a = PyLong_FromUnsignedLong(address);
    if (!a)
        return -1;
    PyObject *args[2] = {o->machine, a};
    PyObject *p = PyObject_VectorcallMethod(dm_s_peripheral_at, args, 2, NULL);
    Py_DECREF(a);
    if (!p)
        return -1;
    int hit = p != Py_None;
    Py_DECREF(p);
    *ok = 1;
    if (hit)
        return 0;
    PyObject *mems = PyObject_GetAttr(o->machine, dm_s_memories);
    if (!mems)
        return -1;
    PyObject *seq = PySequence_Fast(mems, "machine.memories must be a sequence");
    Py_DECREF(mems);
    if (!seq)
        return -1;
    int64_t end = (int64_t)address + size;
    int found = 0;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq) && !found; i++) {
        PyObject *m = PySequence_Fast_GET_ITEM(seq, i);
        int64_t b, n;
        if (!PyTuple_Check(m) || PyTuple_GET_SIZE(m) != 3) {
            PyErr_SetString(PyExc_TypeError, "machine.memories holds (name, base, size)");
            Py_DECREF(seq);
            return -1;
        }
        if (as_i64(PyTuple_GET_ITEM(m, 1), &b) < 0 || as_i64(PyTuple_GET_ITEM(m, 2), &n) < 0) {
            Py_DECREF(seq);
            return -1;
        }
        found = b <= (int64_t)address && end <= b + n;
    }
    Py_DECREF(seq);
    *ok = found;
    return 0;
}

static int dm_host_now(void *h, int64_t *t)
{
    return dm_now(((DmaObject *)h)->machine, t);
}

static int dm_host_schedule_service(void *h, int s)
{
    DmaObject *o = h;
    int64_t t;
    if (dm_now(o->machine, &t) < 0)
        return -1;
    PyObject *ev = dm_at(o->machine, t, o->svc_call[s], o->svc_name[s]);
    if (!ev)
        return -1;
    Py_XSETREF(o->svc_event[s], ev);
    return 0;
}

static int dm_host_cancel_service(void *h, int s)
{
    DmaObject *o = h;
    PyObject *ev = o->svc_event[s];
    if (!ev)
        return 0;
    o->svc_event[s] = NULL;
    int r = dm_cancel(ev);
    Py_DECREF(ev);
    return r;
}

static int dm_host_schedule_delivery(void *h, int s, int flag, int end, uint32_t gen, int64_t t)
{
    DmaObject *o = h;
    PyObject *call = dmacall_new((PyObject *)o, 1, s, flag, end, gen);
    if (!call)
        return -1;
    PyObject *ev = dm_at(o->machine, t, call, o->flag_name[s][flag == DH_DMA_TCIF]);
    Py_DECREF(call);
    if (!ev)
        return -1;
    int r = PyList_Append(o->pending[s], ev);
    Py_DECREF(ev);
    return r;
}

static int dm_host_irq(void *h, int s, int level)
{
    return dm_signal_set(((DmaObject *)h)->irq[s], level);     /* edges only: Signal.set's rule */
}

static int dm_host_transfer_error(void *h, int s)
{
    DmaObject *o = h;
    PyObject *ps = PyLong_FromLong(s);
    if (!ps)
        return -1;
    PyObject *args[4] = {o->machine, dm_s_te_kind, o->name, ps};
    PyObject *r = PyObject_VectorcallMethod(dm_s_record, args, 2, dm_s_kw_dma_stream);
    Py_DECREF(ps);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

static const dh_dma_host dm_host = {
    dm_host_bus_read, dm_host_bus_write, dm_host_mapped, dm_host_now, dm_host_schedule_service,
    dm_host_cancel_service, dm_host_schedule_delivery, dm_host_irq, dm_host_transfer_error,
};

/* ports.h: the register block and the request lines, for other C units */
static int dm_mmio_read(void *self, uint32_t offset, unsigned size, uint64_t *value)
{
    int modelled;
    *value = dh_dma_read(&((DmaObject *)self)->m, offset, size, &modelled);
    return 0;
}

static int dm_mmio_write(void *self, uint32_t offset, unsigned size, uint64_t value)
{
    int modelled;
    return dh_dma_write(&((DmaObject *)self)->m, offset, size, value, &modelled);
}

static int dm_input(void *self, int line, int level)
{
    if (line < 0 || line >= DH_DMA_STREAMS) {
        PyErr_Format(PyExc_IndexError, "DMA request line %d out of range", line);
        return -1;
    }
    return dh_dma_set_input(&((DmaObject *)self)->m, line, level);
}

static const dh_mmio_ops dm_mmio_ops = {dm_mmio_read, dm_mmio_write};
static const dh_input_ops dm_input_ops = {dm_input};

static PyObject *dma_new(PyTypeObject *type, PyObject *Py_UNUSED(args), PyObject *Py_UNUSED(kw))
{
    DmaObject *o = (DmaObject *)type->tp_alloc(type, 0);
    if (!o)
        return NULL;
    dh_dma_init(&o->m, &dm_host, o);
    o->mmio_port.ops = &dm_mmio_ops;
    o->mmio_port.self = o;
    o->input_port.ops = &dm_input_ops;
    o->input_port.self = o;
    return (PyObject *)o;
}

static int dma_traverse(DmaObject *o, visitproc visit, void *arg)
{
    Py_VISIT(o->machine);
    Py_VISIT(o->name);
    Py_VISIT(o->port);
    Py_VISIT(o->bus);
    for (int s = 0; s < DH_DMA_STREAMS; s++) {
        Py_VISIT(o->irq[s]);
        Py_VISIT(o->svc_call[s]);
        Py_VISIT(o->svc_event[s]);
        Py_VISIT(o->pending[s]);
        Py_VISIT(o->svc_name[s]);
        Py_VISIT(o->flag_name[s][0]);
        Py_VISIT(o->flag_name[s][1]);
    }
    return 0;          /* a heap subclass's type is visited by subtype_traverse */
}

static int dma_clear(DmaObject *o)
{
    Py_CLEAR(o->machine);
    Py_CLEAR(o->name);
    Py_CLEAR(o->port);
    Py_CLEAR(o->bus);
    o->port_ops = NULL;
    for (int s = 0; s < DH_DMA_STREAMS; s++) {
        Py_CLEAR(o->irq[s]);
        Py_CLEAR(o->svc_call[s]);
        Py_CLEAR(o->svc_event[s]);
        Py_CLEAR(o->pending[s]);
        Py_CLEAR(o->svc_name[s]);
        Py_CLEAR(o->flag_name[s][0]);
        Py_CLEAR(o->flag_name[s][1]);
    }
    return 0;
}

static void dma_dealloc(DmaObject *o)
{
    PyObject_GC_UnTrack(o);
    dma_clear(o);
    Py_TYPE(o)->tp_free((PyObject *)o);     /* subtype_dealloc drops a heap subclass's type */
}

static int dm_bound(DmaObject *o)
{
    if (o->machine)
        return 1;
    PyErr_SetString(PyExc_RuntimeError, "Dma used before _bind(machine, name, irqs)");
    return 0;
}

/* _bind(machine, name, irq_signals) */
static PyObject *dma_bind(DmaObject *o, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3)
        return PyErr_Format(PyExc_TypeError, "_bind(machine, name, irqs)");
    PyObject *irqs = PySequence_Fast(args[2], "irqs must be a sequence");
    if (!irqs)
        return NULL;
    if (PySequence_Fast_GET_SIZE(irqs) != DH_DMA_STREAMS) {
        Py_DECREF(irqs);
        return PyErr_Format(PyExc_ValueError, "one IRQ signal per stream (%d)", DH_DMA_STREAMS);
    }
    dma_clear(o);
    Py_INCREF(args[0]);
    o->machine = args[0];
    Py_INCREF(args[1]);
    o->name = args[1];
    for (int s = 0; s < DH_DMA_STREAMS; s++) {
        Py_INCREF(PySequence_Fast_GET_ITEM(irqs, s));
        o->irq[s] = PySequence_Fast_GET_ITEM(irqs, s);
        o->svc_call[s] = dmacall_new((PyObject *)o, 0, s, 0, 0, 0);
        o->pending[s] = PyList_New(0);
        o->svc_name[s] = PyUnicode_FromFormat("%U.S%d", args[1], s);
        o->flag_name[s][0] = PyUnicode_FromFormat("%U.S%d.HTIF", args[1], s);
        o->flag_name[s][1] = PyUnicode_FromFormat("%U.S%d.TCIF", args[1], s);
        if (!o->svc_call[s] || !o->pending[s] || !o->svc_name[s] || !o->flag_name[s][0]
            || !o->flag_name[s][1]) {
            Py_DECREF(irqs);
            dma_clear(o);
            return NULL;
        }
    }
    Py_DECREF(irqs);
    Py_RETURN_NONE;
}

static int dm_int_arg(PyObject *o, long lo, long hi, const char *what, long *out)
{
    long v = PyLong_AsLong(o);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (v < lo || v > hi) {
        PyErr_Format(PyExc_IndexError, "%s %ld out of range %ld..%ld", what, v, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

static int dm_access_args(PyObject *const *args, Py_ssize_t nargs, Py_ssize_t want, uint32_t *offset,
                          unsigned *size, uint64_t *value)
{
    if (nargs != want) {
        PyErr_SetString(PyExc_TypeError, want == 2 ? "read(offset, size)" : "write(offset, size, value)");
        return -1;
    }
    unsigned long long off = PyLong_AsUnsignedLongLong(args[0]);
    if (off == (unsigned long long)-1 && PyErr_Occurred())
        return -1;
    long sz = PyLong_AsLong(args[1]);
    if (sz == -1 && PyErr_Occurred())
        return -1;
    if (sz < 1 || sz > 8 || off > 0xFFFFFFFFull) {
        PyErr_Format(PyExc_ValueError, "access of %ld bytes at offset %#llx", sz, off);
        return -1;
    }
    *offset = (uint32_t)off;
    *size = (unsigned)sz;
    if (want == 3) {
        *value = PyLong_AsUnsignedLongLongMask(args[2]);
        if (*value == (uint64_t)-1 && PyErr_Occurred())
            return -1;
    }
    return 0;
}

static PyObject *dma_read(DmaObject *o, PyObject *const *args, Py_ssize_t nargs)
{
    uint32_t off;
    unsigned size;
    int modelled;
    if (dm_access_args(args, nargs, 2, &off, &size, NULL) < 0)
        return NULL;
    return PyLong_FromUnsignedLongLong(dh_dma_read(&o->m, off, size, &modelled));
}

static PyObject *dma_write(DmaObject *o, PyObject *const *args, Py_ssize_t nargs)
{
    uint32_t off;
    unsigned size;
    uint64_t value;
    int modelled;
    if (!dm_bound(o) || dm_access_args(args, nargs, 3, &off, &size, &value) < 0)
        return NULL;
    if (dh_dma_write(&o->m, off, size, value, &modelled) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *dma_set_input(DmaObject *o, PyObject *const *args, Py_ssize_t nargs)
{
    long line;
    if (nargs != 2)
        return PyErr_Format(PyExc_TypeError, "set_input(line, level)");
    if (!dm_bound(o) || dm_int_arg(args[0], 0, DH_DMA_STREAMS - 1, "request line", &line) < 0)
        return NULL;
    int level = PyObject_IsTrue(args[1]);
    if (level < 0 || dh_dma_set_input(&o->m, (int)line, level) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* the chip reset: events cancelled, registers and counters reset, every IRQ output low */
static PyObject *dma_reset(DmaObject *o, PyObject *Py_UNUSED(ignored))
{
    if (!dm_bound(o))
        return NULL;
    for (int s = 0; s < DH_DMA_STREAMS; s++) {
        if (o->m.st[s].service && dm_host_cancel_service(o, s) < 0)
            return NULL;
        PyObject *p = o->pending[s];
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(p); i++)
            if (dm_cancel(PyList_GET_ITEM(p, i)) < 0)
                return NULL;
        if (PyList_SetSlice(p, 0, PY_SSIZE_T_MAX, NULL) < 0)
            return NULL;
    }
    dh_dma_reset(&o->m);
    for (int s = 0; s < DH_DMA_STREAMS; s++)
        if (dm_signal_set(o->irq[s], 0) < 0)
            return NULL;
    Py_RETURN_NONE;
}

static PyObject *dma_set_bus(DmaObject *o, PyObject *bus)
{
    if (bus != Py_None && !PyObject_TypeCheck(bus, &BusType))
        return PyErr_Format(PyExc_TypeError, "_set_bus: a _core.Bus or None, not %T", bus);
    Py_XSETREF(o->bus, bus == Py_None ? NULL : Py_NewRef(bus));
    Py_RETURN_NONE;
}

static PyObject *dma_set_latency(DmaObject *o, PyObject *const *args, Py_ssize_t nargs)
{
    long s;
    int64_t ps;
    if (nargs != 2)
        return PyErr_Format(PyExc_TypeError, "_set_latency(stream, ps)");
    if (dm_int_arg(args[0], 0, DH_DMA_STREAMS - 1, "stream", &s) < 0 || as_i64(args[1], &ps) < 0)
        return NULL;
    o->m.st[s].latency_ps = ps;
    Py_RETURN_NONE;
}

static PyObject *dma_flag(DmaObject *o, PyObject *const *args, Py_ssize_t nargs)
{
    static const char *names[] = {"FEIF", NULL, "DMEIF", "TEIF", "HTIF", "TCIF"};
    long s;
    if (nargs != 2 || !PyUnicode_Check(args[1]))
        return PyErr_Format(PyExc_TypeError, "flag(stream, name)");
    if (dm_int_arg(args[0], 0, DH_DMA_STREAMS - 1, "stream", &s) < 0)
        return NULL;
    for (int f = 0; f < 6; f++)
        if (names[f] && PyUnicode_CompareWithASCIIString(args[1], names[f]) == 0)
            return PyLong_FromLong(dh_dma_flag(&o->m, (int)s, f));
    return PyErr_Format(PyExc_KeyError, "%U%ld", args[1], s);
}

/* the counters of stream s, for inspection and the tests */
static PyObject *dma_stream_state(DmaObject *o, PyObject *arg)
{
    long s;
    if (dm_int_arg(arg, 0, DH_DMA_STREAMS - 1, "stream", &s) < 0)
        return NULL;
    const dh_dma_stream *st = &o->m.st[s];
    return Py_BuildValue("{s:N,s:N,s:k,s:K,s:K,s:L,s:L,s:i,s:K,s:k,s:N}",
                         "request", PyBool_FromLong(st->request), "span_ok", PyBool_FromLong(st->span_ok),
                         "reload", (unsigned long)st->reload, "p_off", (unsigned long long)st->p_off,
                         "m_off", (unsigned long long)st->m_off, "latency_ps", (long long)st->latency_ps,
                         "last_delivery", (long long)st->last_delivery, "pending", st->pending,
                         "transfers", (unsigned long long)st->transfers, "gen", (unsigned long)st->gen,
                         "service", PyBool_FromLong(st->service));
}

static PyObject *dma_get_servicing(DmaObject *o, void *Py_UNUSED(c))
{
    return PyBool_FromLong(o->m.servicing);
}

static PyObject *dm_capsule(dh_port *port, const char *name)
{
    return PyCapsule_New(port, name, NULL);
}

static PyObject *dma_get_mmio(DmaObject *o, void *Py_UNUSED(c))
{
    return dm_capsule(&o->mmio_port, DH_MMIO_CAPSULE);
}

static PyObject *dma_get_input(DmaObject *o, void *Py_UNUSED(c))
{
    return dm_capsule(&o->input_port, DH_INPUT_CAPSULE);
}

static PyObject *dma_get_bus(DmaObject *o, void *Py_UNUSED(c))
{
    return Py_NewRef(o->bus ? o->bus : Py_None);
}

static PyGetSetDef dma_getset[] = {
    {"_bus", (getter)dma_get_bus, NULL, "the machine's _core.Bus transfers use, or None [entryc]", NULL},
    {"_servicing", (getter)dma_get_servicing, NULL, "inside a service: requests are scheduled", NULL},
    {"_native_mmio", (getter)dma_get_mmio, NULL, "ports.h: the register block", NULL},
    {"_native_input", (getter)dma_get_input, NULL, "ports.h: the request lines", NULL},
    {NULL},
};

static PyMethodDef dma_methods[] = {
    {"_bind", (PyCFunction)(void (*)(void))dma_bind, METH_FASTCALL,
     "_bind(machine, name, irq_signals): wire the model to its machine and outputs."},
    {"read", (PyCFunction)(void (*)(void))dma_read, METH_FASTCALL, "read(offset, size) -> int"},
    {"write", (PyCFunction)(void (*)(void))dma_write, METH_FASTCALL, "write(offset, size, value)"},
    {"set_input", (PyCFunction)(void (*)(void))dma_set_input, METH_FASTCALL,
     "set_input(stream, level): the stream's request line (from DMAMUX1)."},
    {"reset", (PyCFunction)dma_reset, METH_NOARGS, "The chip reset (latencies survive)."},
    {"_set_latency", (PyCFunction)(void (*)(void))dma_set_latency, METH_FASTCALL, NULL},
    {"_set_bus", (PyCFunction)dma_set_bus, METH_O,                                  /* [entryc] */
     "_set_bus(bus or None): the machine's _core.Bus, used instead of machine.bus_target"},
    {"flag", (PyCFunction)(void (*)(void))dma_flag, METH_FASTCALL,
     "flag(stream, name) -> the flag (TCIF, HTIF, TEIF, DMEIF, FEIF) of the stream."},
    {"stream_state", (PyCFunction)dma_stream_state, METH_O, "stream_state(s) -> dict of counters"},
    {NULL},
};

static PyTypeObject DmaType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "duohil.engines.builtin.native._core.Dma",
    .tp_basicsize = sizeof(DmaObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "STM32H7 DMA1/DMA2 streams (native/dma.c): the base of stm32_dma.Stm32DmaNative.",
    .tp_new = dma_new,
    .tp_dealloc = (destructor)dma_dealloc,
    .tp_traverse = (traverseproc)dma_traverse,
    .tp_clear = (inquiry)dma_clear,
    .tp_methods = dma_methods,
    .tp_getset = dma_getset,
};

/* -- Dmamux --------------------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    dh_dmamux m;
    int bound;                                /* _bind called */
    PyObject *out[DH_DMAMUX_MAX_CHANNELS];
    dh_port mmio_port, input_port;
} MuxObject;

static int mx_host_output(void *h, int c, int level)
{
    MuxObject *o = h;
    return dm_signal_set(o->out[c], level);
}

static const dh_dmamux_host mx_host = {mx_host_output};

static int mx_mmio_read(void *self, uint32_t offset, unsigned size, uint64_t *value)
{
    int modelled;
    *value = dh_dmamux_read(&((MuxObject *)self)->m, offset, size, &modelled);
    return 0;
}

static int mx_mmio_write(void *self, uint32_t offset, unsigned size, uint64_t value)
{
    int modelled;
    return dh_dmamux_write(&((MuxObject *)self)->m, offset, size, value, &modelled);
}

static int mx_input(void *self, int line, int level)
{
    return dh_dmamux_set_input(&((MuxObject *)self)->m, line, level);
}

static const dh_mmio_ops mx_mmio_ops = {mx_mmio_read, mx_mmio_write};
static const dh_input_ops mx_input_ops = {mx_input};

static PyObject *mux_new(PyTypeObject *type, PyObject *Py_UNUSED(args), PyObject *Py_UNUSED(kw))
{
    MuxObject *o = (MuxObject *)type->tp_alloc(type, 0);
    if (!o)
        return NULL;
    dh_dmamux_init(&o->m, 0, 0, &mx_host, o);
    o->mmio_port.ops = &mx_mmio_ops;
    o->mmio_port.self = o;
    o->input_port.ops = &mx_input_ops;
    o->input_port.self = o;
    return (PyObject *)o;
}

static int mux_traverse(MuxObject *o, visitproc visit, void *arg)
{
    for (int c = 0; c < DH_DMAMUX_MAX_CHANNELS; c++)
        Py_VISIT(o->out[c]);
    return 0;          /* a heap subclass's type is visited by subtype_traverse */
}

static int mux_clear(MuxObject *o)
{
    for (int c = 0; c < DH_DMAMUX_MAX_CHANNELS; c++)
        Py_CLEAR(o->out[c]);
    o->m.n_channels = 0;
    o->bound = 0;
    return 0;
}

static void mux_dealloc(MuxObject *o)
{
    PyObject_GC_UnTrack(o);
    mux_clear(o);
    Py_TYPE(o)->tp_free((PyObject *)o);     /* subtype_dealloc drops a heap subclass's type */
}

/* _bind(outputs, n_generators): one output signal per channel */
static PyObject *mux_bind(MuxObject *o, PyObject *const *args, Py_ssize_t nargs)
{
    long ngen;
    if (nargs != 2)
        return PyErr_Format(PyExc_TypeError, "_bind(outputs, n_generators)");
    PyObject *outs = PySequence_Fast(args[0], "outputs must be a sequence");
    if (!outs)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(outs);
    if (n > DH_DMAMUX_MAX_CHANNELS
        || dm_int_arg(args[1], 0, DH_DMAMUX_MAX_GENERATORS, "request generators", &ngen) < 0) {
        if (!PyErr_Occurred())
            PyErr_Format(PyExc_ValueError, "at most %d channels", DH_DMAMUX_MAX_CHANNELS);
        Py_DECREF(outs);
        return NULL;
    }
    mux_clear(o);
    for (Py_ssize_t c = 0; c < n; c++) {
        Py_INCREF(PySequence_Fast_GET_ITEM(outs, c));
        o->out[c] = PySequence_Fast_GET_ITEM(outs, c);
    }
    Py_DECREF(outs);
    o->bound = 1;
    dh_dmamux_init(&o->m, (int)n, (int)ngen, &mx_host, o);
    Py_RETURN_NONE;
}

static int mx_bound(MuxObject *o)
{
    if (o->bound)
        return 1;
    PyErr_SetString(PyExc_RuntimeError, "Dmamux used before _bind(outputs, n_generators)");
    return 0;
}

static PyObject *mux_read(MuxObject *o, PyObject *const *args, Py_ssize_t nargs)
{
    uint32_t off;
    unsigned size;
    int modelled;
    if (dm_access_args(args, nargs, 2, &off, &size, NULL) < 0)
        return NULL;
    return PyLong_FromUnsignedLongLong(dh_dmamux_read(&o->m, off, size, &modelled));
}

static PyObject *mux_write(MuxObject *o, PyObject *const *args, Py_ssize_t nargs)
{
    uint32_t off;
    unsigned size;
    uint64_t value;
    int modelled;
    if (!mx_bound(o) || dm_access_args(args, nargs, 3, &off, &size, &value) < 0)
        return NULL;
    if (dh_dmamux_write(&o->m, off, size, value, &modelled) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *mux_set_input(MuxObject *o, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2)
        return PyErr_Format(PyExc_TypeError, "set_input(line, level)");
    if (!mx_bound(o))
        return NULL;
    int overflow;
    long line = PyLong_AsLongAndOverflow(args[0], &overflow);
    if (line == -1 && PyErr_Occurred())
        return NULL;
    int level = PyObject_IsTrue(args[1]);
    if (level < 0)
        return NULL;
    if (!overflow && line >= 0 && line < DH_DMAMUX_IDS
        && dh_dmamux_set_input(&o->m, (int)line, level) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *mux_reset(MuxObject *o, PyObject *Py_UNUSED(ignored))
{
    if (!mx_bound(o) || dh_dmamux_reset(&o->m) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* level(line) -> the last level of request line `line` (False when never set) */
static PyObject *mux_level(MuxObject *o, PyObject *arg)
{
    int overflow;
    long line = PyLong_AsLongAndOverflow(arg, &overflow);
    if (line == -1 && PyErr_Occurred())
        return NULL;
    return PyBool_FromLong(!overflow && line >= 0 && line < DH_DMAMUX_IDS && o->m.level[line]);
}

static PyObject *mux_get_mmio(MuxObject *o, void *Py_UNUSED(c))
{
    return dm_capsule(&o->mmio_port, DH_MMIO_CAPSULE);
}

static PyObject *mux_get_input(MuxObject *o, void *Py_UNUSED(c))
{
    return dm_capsule(&o->input_port, DH_INPUT_CAPSULE);
}

static PyGetSetDef mux_getset[] = {
    {"_native_mmio", (getter)mux_get_mmio, NULL, "ports.h: the register block", NULL},
    {"_native_input", (getter)mux_get_input, NULL, "ports.h: the request lines (by request id)", NULL},
    {NULL},
};

static PyMethodDef mux_methods[] = {
    {"_bind", (PyCFunction)(void (*)(void))mux_bind, METH_FASTCALL,
     "_bind(outputs, n_generators): the channel outputs, in channel order."},
    {"read", (PyCFunction)(void (*)(void))mux_read, METH_FASTCALL, "read(offset, size) -> int"},
    {"write", (PyCFunction)(void (*)(void))mux_write, METH_FASTCALL, "write(offset, size, value)"},
    {"set_input", (PyCFunction)(void (*)(void))mux_set_input, METH_FASTCALL,
     "set_input(line, level): request line `line` (RM0433 request id)."},
    {"reset", (PyCFunction)mux_reset, METH_NOARGS, "Registers reset, every output low."},
    {"level", (PyCFunction)mux_level, METH_O, NULL},
    {NULL},
};

static PyTypeObject MuxType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "duohil.engines.builtin.native._core.Dmamux",
    .tp_basicsize = sizeof(MuxObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "STM32H7 DMAMUX1 (native/dmamux.c): the base of stm32_dmamux.Stm32DmamuxNative.",
    .tp_new = mux_new,
    .tp_dealloc = (destructor)mux_dealloc,
    .tp_traverse = (traverseproc)mux_traverse,
    .tp_clear = (inquiry)mux_clear,
    .tp_methods = mux_methods,
    .tp_getset = mux_getset,
};

static int add_dma_types(PyObject *m)
{
#define DM_INTERN(var, s)                                   \
    if (!(var = PyUnicode_InternFromString(s)))             \
        return -1;
    DM_INTERN(dm_s_set, "set");
    DM_INTERN(dm_s_bus_target, "bus_target");
    DM_INTERN(dm_s_bus_write, "bus_write");
    DM_INTERN(dm_s_dma_port, "dma_port");
    DM_INTERN(dm_s_read, "read");
    DM_INTERN(dm_s_write, "write");
    DM_INTERN(dm_s_native_dma_port, "_native_dma_port");
    DM_INTERN(dm_s_peripheral_at, "peripheral_at");
    DM_INTERN(dm_s_memories, "memories");
    DM_INTERN(dm_s_scheduler, "scheduler");
    DM_INTERN(dm_s_at, "at");
    DM_INTERN(dm_s_cancel, "cancel");
    DM_INTERN(dm_s_record, "record");
    DM_INTERN(dm_s_te_kind, "dma_transfer_error");
#undef DM_INTERN
    if (!(dm_s_kw_name = Py_BuildValue("(s)", "name"))
        || !(dm_s_kw_dma_stream = Py_BuildValue("(ss)", "dma", "stream")))
        return -1;
    if (PyType_Ready(&DmaCallType) < 0 || PyType_Ready(&DmaType) < 0 || PyType_Ready(&MuxType) < 0)
        return -1;
    Py_INCREF(&DmaType);
    if (PyModule_AddObject(m, "Dma", (PyObject *)&DmaType) < 0) {
        Py_DECREF(&DmaType);
        return -1;
    }
    Py_INCREF(&MuxType);
    if (PyModule_AddObject(m, "Dmamux", (PyObject *)&MuxType) < 0) {
        Py_DECREF(&MuxType);
        return -1;
    }
    return 0;
}

/* == end of DMA streams and DMAMUX [dmac] ======================================================== */

/* == D-cache and DMA ports [dcachec] ================================================================
 * _core.DCache: the D-cache's state and logic (native/dcache.c), held by dcache.py's DCache (its
 * Python face: properties, set_residency's argument forms), the one copy.
 * _core.DmaPort: machine.py's DmaPort (no D-cache: the CPU's memory through uc_mem_read/
 * uc_mem_write). Both expose `_native_dma_port` (ports.h) so that a C DMA moves bytes without
 * Python. */

#include "dcache.h"
#include "ports.h"

static PyObject *dcs_memories, *dcs_mpu, *dcs_attributes, *dcs_at, *dcs_time, *dcs_cancelled,
    *dcs_cancel, *dcs_uc, *dcs_uch, *dcs_value, *dcs_name_kw, *dcs_evict_name, *dcs_cpu,
    *dcs_scheduler;
static PyObject *dcs_ucerror;          /* unicorn.UcError, imported at the first error */

static int dcs_raise_uc(int err)
{
    if (!dcs_ucerror) {
        PyObject *mod = PyImport_ImportModule("unicorn");
        if (!mod)
            return -1;
        dcs_ucerror = PyObject_GetAttrString(mod, "UcError");
        Py_DECREF(mod);
        if (!dcs_ucerror)
            return -1;
    }
    PyObject *e = PyObject_CallFunction(dcs_ucerror, "i", err);
    if (e) {
        PyErr_SetObject((PyObject *)Py_TYPE(e), e);
        Py_DECREF(e);
    }
    return -1;
}

/* machine.cpu.uc: the engine handle, a new reference to the Uc object in *uc_obj */
static int dcs_machine_uc(PyObject *machine, PyObject **cpu_out, PyObject **uc_obj, uc_engine **uc)
{
    PyObject *cpu = PyObject_GetAttr(machine, dcs_cpu);
    if (!cpu)
        return -1;
    PyObject *u = PyObject_GetAttr(cpu, dcs_uc);          /* None.uc: AttributeError, as Python */
    PyObject *h = u ? PyObject_GetAttr(u, dcs_uch) : NULL;
    PyObject *v = h ? PyObject_GetAttr(h, dcs_value) : NULL;
    void *p = v ? PyLong_AsVoidPtr(v) : NULL;
    Py_XDECREF(v);
    Py_XDECREF(h);
    if (!p) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_RuntimeError, "machine.cpu.uc has no open engine");
        Py_XDECREF(u);
        Py_DECREF(cpu);
        return -1;
    }
    if (need_uc() < 0) {
        Py_DECREF(u);
        Py_DECREF(cpu);
        return -1;
    }
    *uc = (uc_engine *)p;
    *uc_obj = u;
    if (cpu_out)
        *cpu_out = cpu;
    else
        Py_DECREF(cpu);
    return 0;
}

static int dcs_i64(PyObject *o, int64_t *out)
{
    if (!o)
        return -1;
    int rc = as_i64(o, out);
    Py_DECREF(o);
    return rc;
}

/* an address argument: a non-negative int below 2**64 */
static int dcs_addr(PyObject *o, uint64_t *out)
{
    PyObject *i = PyNumber_Index(o);
    if (!i)
        return -1;
    unsigned long long v = PyLong_AsUnsignedLongLong(i);
    Py_DECREF(i);
    if (v == (unsigned long long)-1 && PyErr_Occurred())
        return -1;
    *out = v;
    return 0;
}

/* the bytes of a data argument (bytes(data) in Python): a buffer, released by the caller */
static int dcs_data(PyObject *o, Py_buffer *view, PyObject **tmp)
{
    *tmp = NULL;
    if (PyObject_CheckBuffer(o))
        return PyObject_GetBuffer(o, view, PyBUF_SIMPLE);
    *tmp = PyBytes_FromObject(o);
    if (!*tmp)
        return -1;
    return PyObject_GetBuffer(*tmp, view, PyBUF_SIMPLE);
}

/* -- DCache ------------------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    dc_cache dc;
    int ready;
    dh_port port;
    PyObject *machine;
    PyObject *on_evict;       /* our bound _on_evict: the eviction events' callable */
    PyObject *views_fn;       /* dcache.py's host_views(machine) */
    PyObject *uc_obj;         /* the Uc whose engine dc.uc is */
    PyObject *seed;           /* the seed as given (an int) */
    Py_ssize_t mem_count;     /* len(machine.memories) at the last layout, -1 before */
} DCacheObject;

static PyTypeObject DCacheType;

static int dcg_now(void *ctx, int64_t *out)
{
    return machine_now(((DCacheObject *)ctx)->machine, out);
}

static int dcg_cacheable(void *ctx, uint32_t line, int *cacheable, int *memo)
{
    DCacheObject *o = ctx;
    PyObject *mpu;                      /* getattr(machine, "mpu", None), no exception made */
#if PY_VERSION_HEX >= 0x030D0000
    if (PyObject_GetOptionalAttr(o->machine, dcs_mpu, &mpu) < 0)
#else
    if (_PyObject_LookupAttr(o->machine, dcs_mpu, &mpu) < 0)
#endif
        return -1;
    if (!mpu || mpu == Py_None) {
        Py_XDECREF(mpu);
        *cacheable = 1;
        *memo = 0;
        return 0;
    }
    PyObject *la = PyLong_FromUnsignedLong(line);
    PyObject *res = la ? PyObject_CallMethodOneArg(mpu, dcs_attributes, la) : NULL;
    Py_XDECREF(la);
    Py_DECREF(mpu);
    if (!res)
        return -1;
    PyObject *seq = PySequence_Fast(res, "mpu.attributes() must return (cacheable, access_ok)");
    Py_DECREF(res);
    if (!seq)
        return -1;
    if (PySequence_Fast_GET_SIZE(seq) != 2) {
        Py_DECREF(seq);
        PyErr_SetString(PyExc_ValueError, "mpu.attributes() must return (cacheable, access_ok)");
        return -1;
    }
    int t = PyObject_IsTrue(PySequence_Fast_GET_ITEM(seq, 0));
    Py_DECREF(seq);
    if (t < 0)
        return -1;
    *cacheable = t;
    *memo = 1;
    return 0;
}

static int dcg_schedule(void *ctx, uint32_t la, int64_t t, void **ev)
{
    DCacheObject *o = ctx;
    PyObject *s = PyObject_GetAttr(o->machine, dcs_scheduler);
    if (!s)
        return -1;
    PyObject *pt = PyLong_FromLongLong(t), *pl = PyLong_FromUnsignedLong(la);
    PyObject *r = NULL;
    if (pt && pl) {
        PyObject *args[6] = {NULL, s, pt, o->on_evict, pl, dcs_evict_name};
        r = PyObject_VectorcallMethod(dcs_at, args + 1, 4 | PY_VECTORCALL_ARGUMENTS_OFFSET,
                                      dcs_name_kw);
    }
    Py_XDECREF(pt);
    Py_XDECREF(pl);
    Py_DECREF(s);
    if (!r)
        return -1;
    *ev = r;
    return 0;
}

static int dcg_ev_state(void *ctx, void *ev, int64_t *t, int *cancelled)
{
    PyObject *e = ev;
    if (PyObject_TypeCheck(e, &EventType)) {
        *t = ((EventObject *)e)->time;
        *cancelled = ((EventObject *)e)->cancelled;
        return 0;
    }
    if (dcs_i64(PyObject_GetAttr(e, dcs_time), t) < 0)
        return -1;
    PyObject *c = PyObject_GetAttr(e, dcs_cancelled);
    int v = c ? PyObject_IsTrue(c) : -1;
    Py_XDECREF(c);
    if (v < 0)
        return -1;
    *cancelled = v;
    return 0;
}

static int dcg_cancel(void *ctx, void *ev)
{
    PyObject *e = ev;
    if (Py_IS_TYPE(e, &EventType)) {
        ((EventObject *)e)->cancelled = 1;
        return 0;
    }
    PyObject *r = PyObject_CallMethodNoArgs(e, dcs_cancel);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

static void dcg_drop(void *ctx, void *ev)
{
    Py_DECREF((PyObject *)ev);
}

static int dcg_need_uc(void *ctx, uc_engine **uc)
{
    DCacheObject *o = ctx;
    PyObject *u;
    if (dcs_machine_uc(o->machine, NULL, &u, uc) < 0)
        return -1;
    Py_XSETREF(o->uc_obj, u);
    return 0;
}

static int dcg_uc_error(void *ctx, int err)
{
    return dcs_raise_uc(err);
}

static int dcg_nomem(void *ctx)
{
    PyErr_NoMemory();
    return -1;
}

/* dcache.py's `regions` and `_host_views`, redone when len(machine.memories) changes */
static int dcg_sync(DCacheObject *o)
{
    PyObject *mems = PyObject_GetAttr(o->machine, dcs_memories);
    if (!mems)
        return -1;
    Py_ssize_t n = PyObject_Length(mems);
    if (n < 0 || n == o->mem_count) {
        Py_DECREF(mems);
        return n < 0 ? -1 : 0;
    }
    uint64_t *mb = PyMem_Calloc(n ? n : 1, sizeof *mb), *ms = PyMem_Calloc(n ? n : 1, sizeof *ms);
    dc_view *views = NULL;
    PyObject *vl = NULL, *seq = NULL;
    int rc = -1;
    if (!mb || !ms) {
        PyErr_NoMemory();
        goto out;
    }
    seq = PySequence_Fast(mems, "machine.memories must be a list");
    if (!seq)
        goto out;
    for (Py_ssize_t k = 0; k < n && k < PySequence_Fast_GET_SIZE(seq); k++) {
        PyObject *t = PySequence_Fast_GET_ITEM(seq, k);
        if (!PyTuple_Check(t) || PyTuple_GET_SIZE(t) != 3) {
            PyErr_SetString(PyExc_TypeError, "machine.memories entries are (name, base, size)");
            goto out;
        }
        if (dcs_addr(PyTuple_GET_ITEM(t, 1), &mb[k]) < 0 || dcs_addr(PyTuple_GET_ITEM(t, 2), &ms[k]) < 0)
            goto out;
    }
    vl = PyObject_CallOneArg(o->views_fn, o->machine);
    if (!vl)
        goto out;
    Py_ssize_t nv = PyObject_Length(vl);
    if (nv < 0)
        goto out;
    views = PyMem_Calloc(nv ? nv : 1, sizeof *views);
    if (!views) {
        PyErr_NoMemory();
        goto out;
    }
    for (Py_ssize_t k = 0; k < nv; k++) {
        PyObject *t = PySequence_GetItem(vl, k);
        uint64_t b, e, p;
        int bad = !t || !PyTuple_Check(t) || PyTuple_GET_SIZE(t) != 3
                  || dcs_addr(PyTuple_GET_ITEM(t, 0), &b) < 0 || dcs_addr(PyTuple_GET_ITEM(t, 1), &e) < 0
                  || dcs_addr(PyTuple_GET_ITEM(t, 2), &p) < 0;
        Py_XDECREF(t);
        if (bad) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_TypeError, "host views are (base, end, host address)");
            goto out;
        }
        views[k] = (dc_view){b, e, (uint8_t *)(uintptr_t)p};
    }
    /* the CPU (and its engine) is looked up again at the next access that needs unicorn */
    o->dc.uc = NULL;
    Py_CLEAR(o->uc_obj);
    if (dc_set_layout(&o->dc, mb, ms, (size_t)n, views, (size_t)nv) < 0)
        goto out;
    o->mem_count = n;
    rc = 0;
out:
    PyMem_Free(mb);
    PyMem_Free(ms);
    PyMem_Free(views);
    Py_XDECREF(vl);
    Py_XDECREF(seq);
    Py_DECREF(mems);
    return rc;
}

static int dcg_env_sync(void *ctx)
{
    return dcg_sync(ctx);
}

static int dcg_port_read(void *self, uint32_t address, uint8_t *buf, size_t n)
{
    return dc_read(&((DCacheObject *)self)->dc, address, buf, n);
}

static int dcg_port_write(void *self, uint32_t address, const uint8_t *buf, size_t n)
{
    return dc_write(&((DCacheObject *)self)->dc, address, buf, n);
}

static const dh_dmaport_ops dcg_port_ops = {dcg_port_read, dcg_port_write};

static int dcg_set_seed(DCacheObject *o, PyObject *value)
{
    /* residency_key's zig-zag: z = 2*seed if seed >= 0 else -2*seed - 1; its 32-bit words */
    PyObject *seed = PyNumber_Long(value);
    if (!seed)
        return -1;
    PyObject *zero = PyLong_FromLong(0), *one = PyLong_FromLong(1), *two = PyLong_FromLong(2);
    PyObject *z = NULL, *mask = PyLong_FromUnsignedLong(0xFFFFFFFFul);
    int neg = zero ? PyObject_RichCompareBool(seed, zero, Py_LT) : -1;
    uint32_t *w = NULL;
    size_t nw = 0, cap = 0;
    int rc = -1;
    if (neg < 0 || !one || !two || !mask)
        goto out;
    z = PyNumber_Multiply(seed, two);
    if (z && neg) {
        PyObject *t = PyNumber_Negative(z);
        Py_SETREF(z, t);
        if (z) {
            t = PyNumber_Subtract(z, one);
            Py_SETREF(z, t);
        }
    }
    if (!z)
        goto out;
    for (;;) {
        int nz = PyObject_IsTrue(z);
        if (nz < 0)
            goto out;
        if (!nz)
            break;
        PyObject *lo = PyNumber_And(z, mask);
        if (!lo)
            goto out;
        unsigned long v = PyLong_AsUnsignedLong(lo);
        Py_DECREF(lo);
        if (v == (unsigned long)-1 && PyErr_Occurred())
            goto out;
        if (nw == cap) {
            cap = cap ? 2 * cap : 4;
            uint32_t *nwp = PyMem_Realloc(w, cap * sizeof *w);
            if (!nwp) {
                PyErr_NoMemory();
                goto out;
            }
            w = nwp;
        }
        w[nw++] = (uint32_t)v;
        PyObject *sh = PyLong_FromLong(32), *t = sh ? PyNumber_Rshift(z, sh) : NULL;
        Py_XDECREF(sh);
        Py_SETREF(z, t);
        if (!z)
            goto out;
    }
    if (dc_set_seed(&o->dc, w, nw) < 0)
        goto out;
    Py_XSETREF(o->seed, Py_NewRef(seed));
    rc = 0;
out:
    PyMem_Free(w);
    Py_XDECREF(z);
    Py_XDECREF(zero);
    Py_XDECREF(one);
    Py_XDECREF(two);
    Py_XDECREF(mask);
    Py_DECREF(seed);
    return rc;
}

static PyObject *dcg_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"machine", "regions", "host_views", NULL};
    PyObject *machine, *regions, *views_fn;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOO:DCache", kwlist, &machine, &regions,
                                     &views_fn))
        return NULL;
    PyObject *seq = PySequence_Fast(regions, "regions: a sequence of (base, size)");
    if (!seq)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    uint64_t *b = PyMem_Calloc(n ? n : 1, sizeof *b), *s = PyMem_Calloc(n ? n : 1, sizeof *s);
    DCacheObject *o = NULL;
    if (!b || !s) {
        PyErr_NoMemory();
        goto fail;
    }
    for (Py_ssize_t k = 0; k < n; k++) {
        PyObject *t = PySequence_Fast_GET_ITEM(seq, k);
        if (!PyTuple_Check(t) || PyTuple_GET_SIZE(t) != 2) {
            PyErr_SetString(PyExc_TypeError, "regions: a sequence of (base, size)");
            goto fail;
        }
        if (dcs_addr(PyTuple_GET_ITEM(t, 0), &b[k]) < 0 || dcs_addr(PyTuple_GET_ITEM(t, 1), &s[k]) < 0)
            goto fail;
    }
    o = (DCacheObject *)type->tp_alloc(type, 0);
    if (!o)
        goto fail;
    dc_env env = {o, dcg_env_sync, dcg_now, dcg_cacheable, dcg_schedule, dcg_ev_state, dcg_cancel, dcg_drop,
                  dcg_need_uc, dcg_uc_error, dcg_nomem};
    const char *why;
    if (dc_init(&o->dc, &env, b, s, (size_t)n, &why) < 0) {
        PyErr_Format(PyExc_ValueError, "D-cache: %s", why);
        goto fail;
    }
    o->ready = 1;
    o->port = (dh_port){&dcg_port_ops, o};
    o->machine = Py_NewRef(machine);
    o->views_fn = Py_NewRef(views_fn);
    o->mem_count = -1;
    o->seed = PyLong_FromLong(0);
    o->on_evict = PyObject_GetAttrString((PyObject *)o, "_on_evict");
    if (!o->seed || !o->on_evict)
        goto fail;
    PyMem_Free(b);
    PyMem_Free(s);
    Py_DECREF(seq);
    return (PyObject *)o;
fail:
    PyMem_Free(b);
    PyMem_Free(s);
    Py_DECREF(seq);
    Py_XDECREF(o);
    return NULL;
}

static void dcg_drop_events(DCacheObject *o)
{
    if (!o->ready)
        return;
    for (size_t k = 0; k < o->dc.nrg; k++) {
        dc_region *r = &o->dc.rg[k];
        for (size_t i = 0; r->nev && i < r->nlines; i++)
            if (r->ev[i]) {
                PyObject *e = r->ev[i];
                r->ev[i] = NULL;
                r->nev--;
                Py_DECREF(e);
            }
    }
}

static int dcg_traverse(DCacheObject *o, visitproc visit, void *arg)
{
    Py_VISIT(o->machine);
    Py_VISIT(o->on_evict);
    Py_VISIT(o->views_fn);
    Py_VISIT(o->uc_obj);
    Py_VISIT(o->seed);
    if (o->ready)
        for (size_t k = 0; k < o->dc.nrg; k++) {
            dc_region *r = &o->dc.rg[k];
            for (size_t i = 0, seen = 0; seen < r->nev && i < r->nlines; i++)
                if (r->ev[i]) {
                    seen++;
                    Py_VISIT((PyObject *)r->ev[i]);
                }
        }
    return 0;
}

static int dcg_clear(DCacheObject *o)
{
    dcg_drop_events(o);
    Py_CLEAR(o->machine);
    Py_CLEAR(o->on_evict);
    Py_CLEAR(o->views_fn);
    Py_CLEAR(o->uc_obj);
    Py_CLEAR(o->seed);
    return 0;
}

static void dcg_dealloc(DCacheObject *o)
{
    PyObject_GC_UnTrack(o);
    dcg_clear(o);
    if (o->ready)
        dc_free(&o->dc);
    o->ready = 0;
    Py_TYPE(o)->tp_free((PyObject *)o);
}

static PyObject *dcg_done(int rc)
{
    if (rc < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *dcg_read(DCacheObject *o, PyObject *const *args, Py_ssize_t nargs)
{
    uint64_t a;
    Py_ssize_t n;
    if (nargs != 2)
        return PyErr_Format(PyExc_TypeError, "read(address, size) takes 2 arguments");
    if (dcs_addr(args[0], &a) < 0)
        return NULL;
    n = PyNumber_AsSsize_t(args[1], PyExc_OverflowError);
    if (n == -1 && PyErr_Occurred())
        return NULL;
    if (n < 0)
        n = 0;
    PyObject *out = PyBytes_FromStringAndSize(NULL, n);
    if (!out)
        return NULL;
    if (dc_read(&o->dc, a, (uint8_t *)PyBytes_AS_STRING(out), (size_t)n) < 0) {
        Py_DECREF(out);
        return NULL;
    }
    return out;
}

static PyObject *dcg_write(DCacheObject *o, PyObject *const *args, Py_ssize_t nargs)
{
    uint64_t a;
    if (nargs != 2)
        return PyErr_Format(PyExc_TypeError, "write(address, data) takes 2 arguments");
    if (dcs_addr(args[0], &a) < 0)
        return NULL;
    Py_buffer view;
    PyObject *tmp;
    if (dcs_data(args[1], &view, &tmp) < 0) {
        Py_XDECREF(tmp);
        return NULL;
    }
    int rc = dc_write(&o->dc, a, view.buf, (size_t)view.len);
    PyBuffer_Release(&view);
    Py_XDECREF(tmp);
    return dcg_done(rc);
}

static PyObject *dcg_by_address(DCacheObject *o, PyObject *arg, int (*op)(dc_cache *, uint64_t))
{
    uint64_t a;
    if (dcs_addr(arg, &a) < 0)
        return NULL;
    return dcg_done(op(&o->dc, a));
}

static PyObject *dcg_invalidate(DCacheObject *o, PyObject *arg)
{
    return dcg_by_address(o, arg, dc_invalidate);
}

static PyObject *dcg_clean(DCacheObject *o, PyObject *arg)
{
    return dcg_by_address(o, arg, dc_clean);
}

static PyObject *dcg_clean_invalidate(DCacheObject *o, PyObject *arg)
{
    return dcg_by_address(o, arg, dc_clean_invalidate);
}

static PyObject *dcg_set_way(DCacheObject *o, int (*op)(dc_cache *))
{
    return dcg_done(op(&o->dc));
}

static PyObject *dcg_invalidate_all(DCacheObject *o, PyObject *Py_UNUSED(x))
{
    return dcg_set_way(o, dc_invalidate_all);
}

static PyObject *dcg_clean_all(DCacheObject *o, PyObject *Py_UNUSED(x))
{
    return dcg_set_way(o, dc_clean_all);
}

static PyObject *dcg_clean_invalidate_all(DCacheObject *o, PyObject *Py_UNUSED(x))
{
    return dcg_set_way(o, dc_clean_invalidate_all);
}

static PyObject *dcg_set_enabled(DCacheObject *o, PyObject *arg)
{
    int on = PyObject_IsTrue(arg);
    if (on < 0)
        return NULL;
    return dcg_done(dc_set_enabled(&o->dc, on));
}

static PyObject *dcg_mpu_changed(DCacheObject *o, PyObject *Py_UNUSED(x))
{
    return dcg_done(dc_mpu_changed(&o->dc));
}

static PyObject *dcg_on_reset(DCacheObject *o, PyObject *Py_UNUSED(cause))
{
    return dcg_done(dc_on_reset(&o->dc));
}

static PyObject *dcg_on_evict(DCacheObject *o, PyObject *arg)
{
    uint64_t la;
    if (dcs_addr(arg, &la) < 0)
        return NULL;
    return dcg_done(dc_on_evict(&o->dc, la));
}

/* set_range(None) or set_range((lo, hi)): the residency range, validated by dcache.py */
static PyObject *dcg_set_range(DCacheObject *o, PyObject *arg)
{
    if (arg == Py_None)
        return dcg_done(dc_set_residency(&o->dc, 0, 0, 0));
    int64_t lo, hi;
    if (!PyArg_ParseTuple(arg, "LL:set_range", &lo, &hi))
        return NULL;
    if (lo <= 0 || hi < lo)
        return PyErr_Format(PyExc_ValueError, "residency range must be 0 < min <= max ps, got [%lld, %lld]",
                            (long long)lo, (long long)hi);
    return dcg_done(dc_set_residency(&o->dc, 1, lo, hi));
}

static PyObject *dcg_get_residency(DCacheObject *o, void *Py_UNUSED(c))
{
    if (!o->dc.timed)
        Py_RETURN_NONE;
    return Py_BuildValue("(LL)", (long long)o->dc.r_lo, (long long)o->dc.r_hi);
}

static PyObject *dcg_get_seed(DCacheObject *o, void *Py_UNUSED(c))
{
    return Py_NewRef(o->seed);
}

static int dcg_set_seed_attr(DCacheObject *o, PyObject *v, void *Py_UNUSED(c))
{
    if (!v) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete seed");
        return -1;
    }
    return dcg_set_seed(o, v);
}

static PyObject *dcg_residency_of(DCacheObject *o, PyObject *arg)
{
    uint64_t line;
    if (dcs_addr(arg, &line) < 0)
        return NULL;
    int none;
    int64_t r = dc_residency_of(&o->dc, (uint32_t)line, &none);
    if (none)
        Py_RETURN_NONE;
    return PyLong_FromLongLong(r);
}

static PyObject *dcg_alloc_time(DCacheObject *o, PyObject *arg)
{
    uint64_t line;
    if (dcs_addr(arg, &line) < 0)
        return NULL;
    if (line >> 32)
        return PyLong_FromLongLong(o->dc.epoch);
    return PyLong_FromLongLong(dc_alloc_time(&o->dc, (uint32_t)line));
}

/* sorted stale lines: a list of addresses, or with bases=True a dict line -> its base bytes */
static PyObject *dcg_stale(DCacheObject *o, int bases)
{
    PyObject *out = bases ? PyDict_New() : PyList_New(0);
    if (!out)
        return NULL;
    for (size_t kk = 0; kk < o->dc.nrg; kk++) {
        dc_region *r = &o->dc.rg[o->dc.by_base[kk]];
        for (size_t i = 0; r->nstale && i < r->nlines; i++) {
            if (!r->stale[i])
                continue;
            PyObject *la = PyLong_FromUnsignedLongLong(r->base + i * DC_LINE);
            int rc = -1;
            if (la && bases) {
                PyObject *b = PyBytes_FromStringAndSize((char *)r->stale_base + i * DC_LINE, DC_LINE);
                rc = b ? PyDict_SetItem(out, la, b) : -1;
                Py_XDECREF(b);
            } else if (la) {
                rc = PyList_Append(out, la);
            }
            Py_XDECREF(la);
            if (rc < 0) {
                Py_DECREF(out);
                return NULL;
            }
        }
    }
    return out;
}

static PyObject *dcg_stale_lines(DCacheObject *o, PyObject *Py_UNUSED(x))
{
    return dcg_stale(o, 0);
}

static PyObject *dcg_stale_bases(DCacheObject *o, PyObject *Py_UNUSED(x))
{
    return dcg_stale(o, 1);
}

static PyObject *dcg_events(DCacheObject *o, PyObject *Py_UNUSED(x))
{
    PyObject *out = PyDict_New();
    if (!out)
        return NULL;
    for (size_t kk = 0; kk < o->dc.nrg; kk++) {
        dc_region *r = &o->dc.rg[o->dc.by_base[kk]];
        for (size_t i = 0; r->nev && i < r->nlines; i++) {
            if (!r->ev[i])
                continue;
            PyObject *la = PyLong_FromUnsignedLongLong(r->base + i * DC_LINE);
            if (!la || PyDict_SetItem(out, la, (PyObject *)r->ev[i]) < 0) {
                Py_XDECREF(la);
                Py_DECREF(out);
                return NULL;
            }
            Py_DECREF(la);
        }
    }
    return out;
}

/* bus(address, size): the bus view's bytes of one active region (tests, inspection) */
static PyObject *dcg_bus(DCacheObject *o, PyObject *const *args, Py_ssize_t nargs)
{
    uint64_t a, n;
    if (nargs != 2)
        return PyErr_Format(PyExc_TypeError, "bus(address, size) takes 2 arguments");
    if (dcs_addr(args[0], &a) < 0 || dcs_addr(args[1], &n) < 0 || dcg_sync(o) < 0)
        return NULL;
    dc_region *r = dc_region_of(&o->dc, a);
    if (!r || a + n > r->end)
        return PyErr_Format(PyExc_ValueError, "bus(%#llx, %llu): not within one tracked region",
                            (unsigned long long)a, (unsigned long long)n);
    return PyBytes_FromStringAndSize((char *)r->bus + (a - r->base), (Py_ssize_t)n);
}

/* the active regions' (base, size), in the order given (dcache.py's `regions`) */
static PyObject *dcg_active(DCacheObject *o, PyObject *Py_UNUSED(x))
{
    if (dcg_sync(o) < 0)
        return NULL;
    PyObject *out = PyList_New(0);
    for (size_t k = 0; out && k < o->dc.nrg; k++) {
        dc_region *r = &o->dc.rg[k];
        if (!r->active)
            continue;
        PyObject *t = Py_BuildValue("(KK)", (unsigned long long)r->base, (unsigned long long)r->size);
        if (!t || PyList_Append(out, t) < 0) {
            Py_XDECREF(t);
            Py_CLEAR(out);
            break;
        }
        Py_DECREF(t);
    }
    return out;
}

/* draw(key, lo, hi): random.Random(key).randint(lo, hi) for an int key >= 0, in C */
static PyObject *dcg_draw(PyObject *Py_UNUSED(cls), PyObject *args)
{
    PyObject *key;
    long long lo, hi;
    if (!PyArg_ParseTuple(args, "O!LL:draw", &PyLong_Type, &key, &lo, &hi))
        return NULL;
    if (lo > hi)
        return PyErr_Format(PyExc_ValueError, "draw: empty range");
    PyObject *mask = PyLong_FromUnsignedLong(0xFFFFFFFFul), *sh = PyLong_FromLong(32);
    PyObject *z = PyNumber_Absolute(key);
    uint32_t w[64];
    size_t nw = 0;
    PyObject *res = NULL;
    if (!mask || !sh || !z)
        goto out;
    for (;;) {
        int nz = PyObject_IsTrue(z);
        if (nz < 0)
            goto out;
        if (!nz)
            break;
        if (nw == 64) {
            PyErr_SetString(PyExc_OverflowError, "draw: keys up to 2048 bits");
            goto out;
        }
        PyObject *lw = PyNumber_And(z, mask);
        if (!lw)
            goto out;
        w[nw++] = (uint32_t)PyLong_AsUnsignedLong(lw);
        Py_DECREF(lw);
        PyObject *t = PyNumber_Rshift(z, sh);
        Py_SETREF(z, t);
        if (!z)
            goto out;
    }
    if (!nw)
        w[nw++] = 0;
    res = PyLong_FromLongLong(dc_draw(w, nw, lo, hi));
out:
    Py_XDECREF(mask);
    Py_XDECREF(sh);
    Py_XDECREF(z);
    return res;
}

/* port_loop(owner, address, data | size, iters): what a C DMA does through owner._native_dma_port
 * (ports.h), iters times: write data, or read size bytes (returned, from the last read). For the
 * tests (the capsule path against the Python calls) and the benchmark (per-byte cost from C). */
static PyObject *dcg_port_loop(PyObject *Py_UNUSED(cls), PyObject *args)
{
    PyObject *owner, *what;
    unsigned long address;
    Py_ssize_t iters;
    if (!PyArg_ParseTuple(args, "OkOn:port_loop", &owner, &address, &what, &iters))
        return NULL;
    PyObject *cap = PyObject_GetAttrString(owner, "_native_dma_port");
    if (!cap)
        return NULL;
    dh_port *port = PyCapsule_GetPointer(cap, DH_DMAPORT_CAPSULE);
    Py_DECREF(cap);                  /* the port lives as long as owner, which we hold */
    if (!port)
        return NULL;
    const dh_dmaport_ops *ops = port->ops;
    if (PyLong_Check(what)) {
        Py_ssize_t n = PyLong_AsSsize_t(what);
        if (n < 0)
            return PyErr_Occurred() ? NULL : PyErr_Format(PyExc_ValueError, "negative size");
        PyObject *out = PyBytes_FromStringAndSize(NULL, n);
        for (Py_ssize_t k = 0; out && k < iters; k++)
            if (ops->read(port->self, (uint32_t)address, (uint8_t *)PyBytes_AS_STRING(out), (size_t)n) < 0)
                Py_CLEAR(out);
        return out;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(what, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    int rc = 0;
    for (Py_ssize_t k = 0; rc == 0 && k < iters; k++)
        rc = ops->write(port->self, (uint32_t)address, view.buf, (size_t)view.len);
    PyBuffer_Release(&view);
    return dcg_done(rc);
}

static PyObject *dcg_get_port(PyObject *o, void *Py_UNUSED(c))
{
    return PyCapsule_New(&((DCacheObject *)o)->port, DH_DMAPORT_CAPSULE, NULL);
}

static PyObject *dcg_get_enabled(DCacheObject *o, void *Py_UNUSED(c))
{
    return PyBool_FromLong(o->dc.enabled);
}

static PyObject *dcg_get_epoch(DCacheObject *o, void *Py_UNUSED(c))
{
    return PyLong_FromLongLong(o->dc.epoch);
}

#define DCG_COUNTER(field)                                                                  \
    static PyObject *dcg_get_##field(DCacheObject *o, void *Py_UNUSED(c))                   \
    {                                                                                       \
        return PyLong_FromLongLong(o->dc.field);                                            \
    }
DCG_COUNTER(dma_stale_writes)
DCG_COUNTER(lines_invalidated)
DCG_COUNTER(lines_written_back)
DCG_COUNTER(set_way_ops)
DCG_COUNTER(set_way_runs)
DCG_COUNTER(stale_evictions)
DCG_COUNTER(writebacks)
DCG_COUNTER(fresh_writes)
#undef DCG_COUNTER

static PyGetSetDef dcg_getset[] = {
    {"_native_dma_port", dcg_get_port, NULL, "ports.h's dh_port capsule (duohil.native.dmaport)", NULL},
    {"enabled", (getter)dcg_get_enabled, NULL, "CCR.DC", NULL},
    {"seed", (getter)dcg_get_seed, (setter)dcg_set_seed_attr, "the residency draws' seed", NULL},
    {"residency", (getter)dcg_get_residency, NULL, "(r_min, r_max) in ps, or None", NULL},
    {"epoch", (getter)dcg_get_epoch, NULL, "alloc time of every line without its own", NULL},
    {"dma_stale_writes", (getter)dcg_get_dma_stale_writes, NULL, NULL, NULL},
    {"lines_invalidated", (getter)dcg_get_lines_invalidated, NULL, NULL, NULL},
    {"lines_written_back", (getter)dcg_get_lines_written_back, NULL, NULL, NULL},
    {"set_way_ops", (getter)dcg_get_set_way_ops, NULL, NULL, NULL},
    {"set_way_runs", (getter)dcg_get_set_way_runs, NULL, NULL, NULL},
    {"stale_evictions", (getter)dcg_get_stale_evictions, NULL, NULL, NULL},
    {"writebacks", (getter)dcg_get_writebacks, NULL, NULL, NULL},
    {"fresh_writes", (getter)dcg_get_fresh_writes, NULL, NULL, NULL},
    {NULL},
};

static PyMethodDef dcg_methods[] = {
    {"read", (PyCFunction)(void (*)(void))dcg_read, METH_FASTCALL,
     "read(address, size) -> bytes: what a DMA master reads"},
    {"write", (PyCFunction)(void (*)(void))dcg_write, METH_FASTCALL,
     "write(address, data): a DMA master's write"},
    {"invalidate", (PyCFunction)dcg_invalidate, METH_O, "DCIMVAC"},
    {"clean", (PyCFunction)dcg_clean, METH_O, "DCCMVAC/DCCMVAU"},
    {"clean_invalidate", (PyCFunction)dcg_clean_invalidate, METH_O, "DCCIMVAC"},
    {"invalidate_all", (PyCFunction)dcg_invalidate_all, METH_NOARGS, "DCISW"},
    {"clean_all", (PyCFunction)dcg_clean_all, METH_NOARGS, "DCCSW"},
    {"clean_invalidate_all", (PyCFunction)dcg_clean_invalidate_all, METH_NOARGS, "DCCISW"},
    {"set_enabled", (PyCFunction)dcg_set_enabled, METH_O, "CCR.DC written"},
    {"mpu_changed", (PyCFunction)dcg_mpu_changed, METH_NOARGS, NULL},
    {"_on_reset", (PyCFunction)dcg_on_reset, METH_O, "a machine reset hook"},
    {"_on_evict", (PyCFunction)dcg_on_evict, METH_O, "the eviction event of a stale line"},
    {"set_range", (PyCFunction)dcg_set_range, METH_O, "set_range(None | (lo, hi))"},
    {"residency_of", (PyCFunction)dcg_residency_of, METH_O, NULL},
    {"alloc_time", (PyCFunction)dcg_alloc_time, METH_O, NULL},
    {"stale_lines", (PyCFunction)dcg_stale_lines, METH_NOARGS, NULL},
    {"stale_bases", (PyCFunction)dcg_stale_bases, METH_NOARGS, "{stale line: its base bytes}"},
    {"events", (PyCFunction)dcg_events, METH_NOARGS, "{stale line: its eviction event}"},
    {"bus", (PyCFunction)(void (*)(void))dcg_bus, METH_FASTCALL, "bus(address, size) -> bytes"},
    {"active_regions", (PyCFunction)dcg_active, METH_NOARGS, "[(base, size)] of mapped regions"},
    {"port_loop", (PyCFunction)dcg_port_loop, METH_VARARGS | METH_STATIC,
     "port_loop(owner, address, data | size, iters): owner's _native_dma_port called from C"},
    {"draw", (PyCFunction)dcg_draw, METH_VARARGS | METH_STATIC,
     "draw(key, lo, hi): random.Random(key).randint(lo, hi), computed in C"},
    {NULL},
};

static PyTypeObject DCacheType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "duohil.engines.builtin.native._core.DCache",
    .tp_basicsize = sizeof(DCacheObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "DCache(machine, [(base, size)], host_views): dcache.py's D-cache in C",
    .tp_new = dcg_new,
    .tp_dealloc = (destructor)dcg_dealloc,
    .tp_traverse = (traverseproc)dcg_traverse,
    .tp_clear = (inquiry)dcg_clear,
    .tp_methods = dcg_methods,
    .tp_getset = dcg_getset,
};

/* -- DmaPort: the CPU's memory as a DMA master sees it without a D-cache ------------------------ */

typedef struct {
    PyObject_HEAD
    dh_port port;
    PyObject *machine;
    PyObject *cpu;          /* the machine.cpu whose engine uc is */
    PyObject *uc_obj;
    uc_engine *uc;
} UcPortObject;

static PyTypeObject UcPortType;

/* machine.cpu.uc's engine, looked up again when machine.cpu is another object */
static int ucp_engine(UcPortObject *o)
{
    PyObject *cpu = PyObject_GetAttr(o->machine, dcs_cpu);
    if (!cpu)
        return -1;
    int same = cpu == o->cpu && o->uc;
    Py_DECREF(cpu);
    if (same)
        return 0;
    PyObject *c, *u;
    uc_engine *uc;
    if (dcs_machine_uc(o->machine, &c, &u, &uc) < 0)
        return -1;
    Py_XSETREF(o->cpu, c);
    Py_XSETREF(o->uc_obj, u);
    o->uc = uc;
    return 0;
}

static int ucp_read(void *self, uint32_t address, uint8_t *buf, size_t n)
{
    UcPortObject *o = self;
    if (ucp_engine(o) < 0)
        return -1;
    uc_err e = UC.mem_read(o->uc, address, buf, n);
    return e == UC_ERR_OK ? 0 : dcs_raise_uc((int)e);
}

static int ucp_write(void *self, uint32_t address, const uint8_t *buf, size_t n)
{
    UcPortObject *o = self;
    if (ucp_engine(o) < 0)
        return -1;
    uc_err e = UC.mem_write(o->uc, address, buf, n);
    return e == UC_ERR_OK ? 0 : dcs_raise_uc((int)e);
}

static const dh_dmaport_ops ucp_ops = {ucp_read, ucp_write};

static PyObject *ucp_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"machine", NULL};
    PyObject *machine;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O:DmaPort", kwlist, &machine))
        return NULL;
    if (need_uc() < 0)
        return NULL;
    UcPortObject *o = (UcPortObject *)type->tp_alloc(type, 0);
    if (!o)
        return NULL;
    o->port = (dh_port){&ucp_ops, o};
    o->machine = Py_NewRef(machine);
    return (PyObject *)o;
}

static int ucp_traverse(UcPortObject *o, visitproc visit, void *arg)
{
    Py_VISIT(o->machine);
    Py_VISIT(o->cpu);
    Py_VISIT(o->uc_obj);
    return 0;
}

static int ucp_clear(UcPortObject *o)
{
    Py_CLEAR(o->machine);
    Py_CLEAR(o->cpu);
    Py_CLEAR(o->uc_obj);
    o->uc = NULL;
    return 0;
}

static void ucp_dealloc(UcPortObject *o)
{
    PyObject_GC_UnTrack(o);
    ucp_clear(o);
    Py_TYPE(o)->tp_free((PyObject *)o);
}

static PyObject *ucp_pyread(UcPortObject *o, PyObject *const *args, Py_ssize_t nargs)
{
    uint64_t a;
    if (nargs != 2)
        return PyErr_Format(PyExc_TypeError, "read(address, size) takes 2 arguments");
    if (dcs_addr(args[0], &a) < 0)
        return NULL;
    Py_ssize_t n = PyNumber_AsSsize_t(args[1], PyExc_OverflowError);
    if (n == -1 && PyErr_Occurred())
        return NULL;
    if (n < 0)
        return PyErr_Format(PyExc_ValueError, "read: negative size");
    if (ucp_engine(o) < 0)
        return NULL;
    PyObject *out = PyBytes_FromStringAndSize(NULL, n);
    if (!out)
        return NULL;
    uc_err e = UC.mem_read(o->uc, a, PyBytes_AS_STRING(out), (size_t)n);
    if (e != UC_ERR_OK) {
        Py_DECREF(out);
        dcs_raise_uc((int)e);
        return NULL;
    }
    return out;
}

static PyObject *ucp_pywrite(UcPortObject *o, PyObject *const *args, Py_ssize_t nargs)
{
    uint64_t a;
    if (nargs != 2)
        return PyErr_Format(PyExc_TypeError, "write(address, data) takes 2 arguments");
    if (dcs_addr(args[0], &a) < 0)
        return NULL;
    Py_buffer view;
    PyObject *tmp;
    if (dcs_data(args[1], &view, &tmp) < 0) {
        Py_XDECREF(tmp);
        return NULL;
    }
    int rc = ucp_engine(o);
    if (rc == 0) {
        uc_err e = UC.mem_write(o->uc, a, view.buf, (size_t)view.len);
        if (e != UC_ERR_OK)
            rc = dcs_raise_uc((int)e);
    }
    PyBuffer_Release(&view);
    Py_XDECREF(tmp);
    return dcg_done(rc);
}

static PyObject *ucp_get_port(PyObject *o, void *Py_UNUSED(c))
{
    return PyCapsule_New(&((UcPortObject *)o)->port, DH_DMAPORT_CAPSULE, NULL);
}

static PyGetSetDef ucp_getset[] = {
    {"_native_dma_port", ucp_get_port, NULL, "ports.h's dh_port capsule (duohil.native.dmaport)", NULL},
    {NULL},
};

static PyMemberDef ucp_members[] = {
    {"machine", T_OBJECT, offsetof(UcPortObject, machine), READONLY, NULL},
    {NULL},
};

static PyMethodDef ucp_methods[] = {
    {"read", (PyCFunction)(void (*)(void))ucp_pyread, METH_FASTCALL,
     "read(address, size) -> bytes: the CPU's memory (uc_mem_read)"},
    {"write", (PyCFunction)(void (*)(void))ucp_pywrite, METH_FASTCALL,
     "write(address, data): into the CPU's memory (uc_mem_write)"},
    {NULL},
};

static PyTypeObject UcPortType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "duohil.engines.builtin.native._core.DmaPort",
    .tp_basicsize = sizeof(UcPortObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "DmaPort(machine): machine.py's DmaPort, how a DMA master sees the CPU's memory with no "
              "D-cache model (uc_mem_read/uc_mem_write on machine.cpu.uc's engine)",
    .tp_new = ucp_new,
    .tp_dealloc = (destructor)ucp_dealloc,
    .tp_traverse = (traverseproc)ucp_traverse,
    .tp_clear = (inquiry)ucp_clear,
    .tp_methods = ucp_methods,
    .tp_members = ucp_members,
    .tp_getset = ucp_getset,
};

static int add_dcache_types(PyObject *m)
{
#define DCS_INTERN(var, s)                                  \
    if (!(var = PyUnicode_InternFromString(s)))             \
        return -1;
    DCS_INTERN(dcs_memories, "memories");
    DCS_INTERN(dcs_mpu, "mpu");
    DCS_INTERN(dcs_attributes, "attributes");
    DCS_INTERN(dcs_at, "at");
    DCS_INTERN(dcs_time, "time");
    DCS_INTERN(dcs_cancelled, "cancelled");
    DCS_INTERN(dcs_cancel, "cancel");
    DCS_INTERN(dcs_uc, "uc");
    DCS_INTERN(dcs_uch, "_uch");
    DCS_INTERN(dcs_value, "value");
    DCS_INTERN(dcs_evict_name, "dcache-evict");
    DCS_INTERN(dcs_cpu, "cpu");
    DCS_INTERN(dcs_scheduler, "scheduler");
#undef DCS_INTERN
    if (!(dcs_name_kw = Py_BuildValue("(s)", "name")))
        return -1;
    if (PyType_Ready(&DCacheType) < 0 || PyType_Ready(&UcPortType) < 0)
        return -1;
    Py_INCREF(&DCacheType);
    if (PyModule_AddObject(m, "DCache", (PyObject *)&DCacheType) < 0) {
        Py_DECREF(&DCacheType);
        return -1;
    }
    Py_INCREF(&UcPortType);
    if (PyModule_AddObject(m, "DmaPort", (PyObject *)&UcPortType) < 0) {
        Py_DECREF(&UcPortType);
        return -1;
    }
    return 0;
}

/* == end of D-cache and DMA ports [dcachec] ======================================================= */

/* == Usart and Signal [usartc] =================================================================== */
/* stm32_usart.py's Stm32Usart keeps its whole state in a _core.Usart (model: usart.c);
 * _core.Signal is every model's output line (peripheral.py's Signal), the one implementation. */

#include "usart.h"
#include "ports.h"

static PyObject *str_set_input, *str_native_input, *str_cancel, *str_cancelled, *str_time,
    *str_level, *str_set, *str_connected, *str_native_tx_sink, *kw_name,
    *str_warning, *str_dma_not_wired;

/* -- Signal ------------------------------------------------------------------------------------ */

typedef struct {
    PyObject *sink;
    PyObject *line;
    PyObject *capsule;                /* the sink's _native_input, or NULL */
    const dh_input_ops *ops;
    void *self;
    int line_c;
} sig_target;

typedef struct {
    PyObject_HEAD
    PyObject *name;
    char level;
    Py_ssize_t n, cap;
    sig_target *t;
} SignalObject;

static PyTypeObject SignalType;

static PyObject *sig_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"name", NULL};
    PyObject *name;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O:Signal", kwlist, &name))
        return NULL;
    SignalObject *s = (SignalObject *)type->tp_alloc(type, 0);
    if (!s)
        return NULL;
    Py_INCREF(name);
    s->name = name;
    return (PyObject *)s;
}

static int sig_traverse(SignalObject *s, visitproc visit, void *arg)
{
    Py_VISIT(s->name);
    for (Py_ssize_t i = 0; i < s->n; i++) {
        Py_VISIT(s->t[i].sink);
        Py_VISIT(s->t[i].line);
        Py_VISIT(s->t[i].capsule);
    }
    return 0;
}

static int sig_clear(SignalObject *s)
{
    Py_CLEAR(s->name);
    Py_ssize_t n = s->n;
    sig_target *t = s->t;
    s->n = s->cap = 0;
    s->t = NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_XDECREF(t[i].sink);
        Py_XDECREF(t[i].line);
        Py_XDECREF(t[i].capsule);
    }
    PyMem_Free(t);
    return 0;
}

static void sig_dealloc(SignalObject *s)
{
    PyObject_GC_UnTrack(s);
    sig_clear(s);
    Py_TYPE(s)->tp_free((PyObject *)s);
}

/* A getattr that is None on AttributeError (new reference, or NULL with an error set). */
static PyObject *optional_attr(PyObject *o, PyObject *name)
{
    PyObject *v = PyObject_GetAttr(o, name);
    if (!v && PyErr_ExceptionMatches(PyExc_AttributeError)) {
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    return v;
}

static PyObject *sig_connect(SignalObject *s, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2)
        return PyErr_Format(PyExc_TypeError, "connect(sink, line) takes 2 arguments (%zd given)", nargs);
    PyObject *cap = optional_attr(args[0], str_native_input);
    if (!cap)
        return NULL;
    const dh_input_ops *ops = NULL;
    void *self = NULL;
    int line_c = 0;
    if (PyCapsule_IsValid(cap, DH_INPUT_CAPSULE) && PyLong_Check(args[1])) {
        long l = PyLong_AsLong(args[1]);
        if (l == -1 && PyErr_Occurred()) {
            PyErr_Clear();                     /* a line C cannot hold: the Python call */
        } else if (l >= INT_MIN && l <= INT_MAX) {
            dh_port *p = PyCapsule_GetPointer(cap, DH_INPUT_CAPSULE);
            if (!p) {
                Py_DECREF(cap);
                return NULL;
            }
            ops = p->ops;
            self = p->self;
            line_c = (int)l;
        }
    }
    if (!ops)
        Py_CLEAR(cap);
    else if (cap == Py_None)
        Py_CLEAR(cap);
    if (s->n == s->cap) {
        Py_ssize_t cap2 = s->cap ? 2 * s->cap : 2;
        sig_target *t = PyMem_Realloc(s->t, (size_t)cap2 * sizeof *t);
        if (!t) {
            Py_XDECREF(cap);
            return PyErr_NoMemory();
        }
        s->t = t;
        s->cap = cap2;
    }
    sig_target *t = &s->t[s->n++];
    Py_INCREF(args[0]);
    Py_INCREF(args[1]);
    t->sink = args[0];
    t->line = args[1];
    t->capsule = cap;
    t->ops = ops;
    t->self = self;
    t->line_c = line_c;
    Py_RETURN_NONE;
}

/* Signal.set: edges only, each sink in connection order. */
static int signal_set_level(SignalObject *s, int level)
{
    if (level == s->level)
        return 0;
    s->level = (char)level;
    PyObject *lv = level ? Py_True : Py_False;
    for (Py_ssize_t i = 0; i < s->n; i++) {        /* a sink may connect more: n is re-read */
        sig_target t = s->t[i];
        if (t.ops) {
            Py_INCREF(t.sink);
            int rc = t.ops->set_input(t.self, t.line_c, level);
            Py_DECREF(t.sink);
            if (rc < 0)
                return -1;
            continue;
        }
        Py_INCREF(t.sink);
        Py_INCREF(t.line);
        PyObject *callargs[3] = {t.sink, t.line, lv};
        PyObject *r = PyObject_VectorcallMethod(str_set_input, callargs,
                                                3 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
        Py_DECREF(t.sink);
        Py_DECREF(t.line);
        if (!r)
            return -1;
        Py_DECREF(r);
    }
    return 0;
}

/* the same for a PyObject known to be a _core.Signal ([dmac] calls it) */
static int signal_set_obj(PyObject *sig, int level)
{
    return signal_set_level((SignalObject *)sig, level);
}

static PyObject *sig_set(SignalObject *s, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs > 1)
        return PyErr_Format(PyExc_TypeError, "set(level=True) takes at most 1 argument (%zd given)", nargs);
    int level = 1;
    if (nargs == 1 && (level = PyObject_IsTrue(args[0])) < 0)
        return NULL;
    if (signal_set_level(s, level) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *sig_pulse(SignalObject *s, PyObject *Py_UNUSED(ignored))
{
    if (signal_set_level(s, 1) < 0 || signal_set_level(s, 0) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *sig_get_level(SignalObject *s, void *Py_UNUSED(c))
{
    return PyBool_FromLong(s->level);
}

static int sig_set_level_attr(SignalObject *s, PyObject *v, void *Py_UNUSED(c))
{
    int l = v ? PyObject_IsTrue(v) : -1;
    if (l < 0) {
        if (!v)
            PyErr_SetString(PyExc_AttributeError, "level cannot be deleted");
        return -1;
    }
    s->level = (char)l;
    return 0;
}

static PyObject *sig_get_name(SignalObject *s, void *Py_UNUSED(c))
{
    Py_INCREF(s->name);
    return s->name;
}

static int sig_set_name(SignalObject *s, PyObject *v, void *Py_UNUSED(c))
{
    if (!v) {
        PyErr_SetString(PyExc_AttributeError, "name cannot be deleted");
        return -1;
    }
    Py_INCREF(v);
    Py_SETREF(s->name, v);
    return 0;
}

static PyObject *sig_get_connected(SignalObject *s, void *Py_UNUSED(c))
{
    return PyBool_FromLong(s->n > 0);
}

static PyObject *sig_get_targets(SignalObject *s, void *Py_UNUSED(c))
{
    PyObject *l = PyList_New(s->n);
    if (!l)
        return NULL;
    for (Py_ssize_t i = 0; i < s->n; i++) {
        PyObject *t = PyTuple_Pack(2, s->t[i].sink, s->t[i].line);
        if (!t) {
            Py_DECREF(l);
            return NULL;
        }
        PyList_SET_ITEM(l, i, t);
    }
    return l;
}

static PyObject *sig_repr(SignalObject *s)
{
    return PyUnicode_FromFormat("<Signal %S %s>", s->name, s->level ? "high" : "low");
}

static PyGetSetDef sig_getset[] = {
    {"name", (getter)sig_get_name, (setter)sig_set_name, "the line's name (peripheral.output)", NULL},
    {"level", (getter)sig_get_level, (setter)sig_set_level_attr, "the line's level", NULL},
    {"connected", (getter)sig_get_connected, NULL, "True when some sink is connected", NULL},
    {"_targets", (getter)sig_get_targets, NULL, "[(sink, line)] in connection order (a copy)", NULL},
    {NULL},
};

static PyMethodDef sig_methods[] = {
    {"connect", (PyCFunction)(void (*)(void))sig_connect, METH_FASTCALL,
     "connect(sink, line): sink.set_input(line, level) at every edge (C call when the sink has a "
     "_native_input capsule)."},
    {"set", (PyCFunction)(void (*)(void))sig_set, METH_FASTCALL,
     "set(level=True): on a change, every sink's set_input(line, level) in connection order."},
    {"pulse", (PyCFunction)sig_pulse, METH_NOARGS, "Edge for edge-triggered inputs: high then low."},
    {NULL},
};

static PyTypeObject SignalType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "duohil.engines.builtin.native._core.Signal",
    .tp_basicsize = sizeof(SignalObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Signal(name): a wire from a peripheral output to numbered inputs (peripheral.py's "
              "Signal): set(level) calls every sink's set_input(line, level) on a change of level, "
              "in connection order (in C for a sink with a _native_input capsule).",
    .tp_new = sig_new,
    .tp_dealloc = (destructor)sig_dealloc,
    .tp_traverse = (traverseproc)sig_traverse,
    .tp_clear = (inquiry)sig_clear,
    .tp_repr = (reprfunc)sig_repr,
    .tp_getset = sig_getset,
    .tp_methods = sig_methods,
};

/* -- Usart ------------------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    dh_usart u;
    PyObject *owner;                  /* the Python peripheral: tx_sink's src, poll_hint's owner */
    PyObject *machine, *sched_at, *name, *base;
    PyObject *sig[DH_USART_OUT_N];
    PyObject *ev[DH_USART_EV_N];
    PyObject *ev_fn[DH_USART_EV_N];
    PyObject *ev_name[DH_USART_EV_N];
    PyObject *tx_sink, *tx_capsule;
    const dh_tx_sink_ops *tx_ops;
    void *tx_self;
    PyObject *mmio_capsule, *rx_capsule;
    dh_port mmio_port, rx_port;
    char warned[DH_USART_OUT_N];
    int64_t frequency;                /* the repl frequency reset() returns kernel_hz to */
} UsartObject;

static PyObject *i128_long(dh_i128 v)
{
    if (v >= INT64_MIN && v <= INT64_MAX)
        return PyLong_FromLongLong((long long)v);
    PyObject *hi = PyLong_FromLongLong((long long)(int64_t)(v >> 64));
    PyObject *lo = PyLong_FromUnsignedLongLong((unsigned long long)(uint64_t)v);
    PyObject *sh = PyLong_FromLong(64);
    PyObject *r = NULL;
    if (hi && lo && sh) {
        PyObject *h = PyNumber_Lshift(hi, sh);
        if (h) {
            r = PyNumber_Or(h, lo);
            Py_DECREF(h);
        }
    }
    Py_XDECREF(hi);
    Py_XDECREF(lo);
    Py_XDECREF(sh);
    return r;
}

/* at(t, fn, *args, name=name) through a unit's bound `at` (machine.scheduler.at, kept when the
 * unit was bound): the C scheduler's own event straight onto its heap when it is that one (the
 * same time clamp, sequence number and compaction as Scheduler.at), else the call. t as the units
 * compute it (128 bits); beyond 64 the call raises what Scheduler.at says. */
static PyObject *bound_at(PyObject *at, __int128 t, PyObject *fn, PyObject *args, PyObject *name,
                          PyObject *kw_names)
{
    if (t >= INT64_MIN && t <= INT64_MAX && PyCFunction_Check(at)
        && PyCFunction_GET_FUNCTION(at) == (PyCFunction)(void (*)(void))sched_at
        && PyCFunction_GET_SELF(at) && PyObject_TypeCheck(PyCFunction_GET_SELF(at), &SchedType))
        return c_at(PyCFunction_GET_SELF(at), (int64_t)t, fn, args, name);
    PyObject *tt = i128_long(t);
    if (!tt)
        return NULL;
    Py_ssize_t n = PyTuple_GET_SIZE(args);
    PyObject *stack[8];
    if (n > 5) {
        Py_DECREF(tt);
        PyErr_SetString(PyExc_ValueError, "bound_at: too many arguments");
        return NULL;
    }
    stack[0] = tt;
    stack[1] = fn;
    for (Py_ssize_t i = 0; i < n; i++)
        stack[2 + i] = PyTuple_GET_ITEM(args, i);
    stack[2 + n] = name;
    PyObject *ev = PyObject_Vectorcall(at, stack, 2 + n, kw_names);
    Py_DECREF(tt);
    return ev;
}


static int us_now(void *h, int64_t *out)
{
    return machine_now(((UsartObject *)h)->machine, out);
}

static int us_schedule(void *h, int which, dh_i128 t)
{
    UsartObject *o = h;
    PyObject *none = PyTuple_New(0);
    PyObject *ev = none ? bound_at(o->sched_at, t, o->ev_fn[which], none, o->ev_name[which], kw_name) : NULL;
    Py_XDECREF(none);
    if (!ev)
        return -1;
    Py_XSETREF(o->ev[which], ev);
    return 0;
}

static int us_cancel(void *h, int which)
{
    UsartObject *o = h;
    PyObject *ev = o->ev[which];
    if (!ev)
        return 0;
    o->ev[which] = NULL;
    if (Py_TYPE(ev) == &EventType) {
        ((EventObject *)ev)->cancelled = 1;
    } else {
        PyObject *r = PyObject_CallMethodNoArgs(ev, str_cancel);
        if (!r) {
            Py_DECREF(ev);
            return -1;
        }
        Py_DECREF(r);
    }
    Py_DECREF(ev);
    return 0;
}

static void us_forget(void *h, int which)
{
    Py_CLEAR(((UsartObject *)h)->ev[which]);
}

static int us_live(void *h, int which, int64_t *t)
{
    PyObject *ev = ((UsartObject *)h)->ev[which];
    if (!ev)
        return 0;
    if (Py_TYPE(ev) == &EventType) {
        if (((EventObject *)ev)->cancelled)
            return 0;
        *t = ((EventObject *)ev)->time;
        return 1;
    }
    PyObject *c = PyObject_GetAttr(ev, str_cancelled);
    if (!c)
        return -1;
    int cancelled = PyObject_IsTrue(c);
    Py_DECREF(c);
    if (cancelled)
        return cancelled < 0 ? -1 : 0;
    PyObject *tt = PyObject_GetAttr(ev, str_time);
    if (!tt)
        return -1;
    int rc = as_i64(tt, t);
    Py_DECREF(tt);
    return rc < 0 ? -1 : 1;
}

static int us_output(void *h, int which, int level)
{
    PyObject *sig = ((UsartObject *)h)->sig[which];
    if (Py_TYPE(sig) == &SignalType)
        return signal_set_level((SignalObject *)sig, level);
    PyObject *l = PyObject_GetAttr(sig, str_level);       /* another signal object */
    if (!l)
        return -1;
    int cur = PyObject_IsTrue(l);
    Py_DECREF(l);
    if (cur < 0)
        return -1;
    if (cur == level)
        return 0;
    PyObject *r = PyObject_CallMethodOneArg(sig, str_set, level ? Py_True : Py_False);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

static int us_tx(void *h, int byte, int64_t t0, dh_i128 bit_ps, int frame_half)
{
    UsartObject *o = h;
    if (o->tx_ops)
        return o->tx_ops->tx(o->tx_self, o->owner, byte, t0, (int64_t)bit_ps, frame_half / 2.0);
    if (o->tx_sink == Py_None)
        return 0;
    PyObject *b = PyLong_FromLong(byte), *t = PyLong_FromLongLong(t0), *bt = i128_long(bit_ps);
    PyObject *fb = frame_half % 2 ? PyFloat_FromDouble(frame_half / 2.0) : PyLong_FromLong(frame_half / 2);
    PyObject *r = NULL;
    if (b && t && bt && fb) {
        PyObject *sink = o->tx_sink;
        Py_INCREF(sink);
        PyObject *args[5] = {o->owner, b, t, bt, fb};
        r = PyObject_Vectorcall(sink, args, 5, NULL);
        Py_DECREF(sink);
    }
    Py_XDECREF(b);
    Py_XDECREF(t);
    Py_XDECREF(bt);
    Py_XDECREF(fb);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

static int us_poll_hint(void *h, int has_wake, int64_t wake)
{
    UsartObject *o = h;
    PyObject *cpu = PyObject_GetAttr(o->machine, str_cpu);
    if (!cpu)
        return -1;
    if (cpu == Py_None) {
        Py_DECREF(cpu);
        return 0;
    }
    int rc = cpu_poll_hint(cpu, o->base, has_wake, wake);                              /* [pollc] */
    Py_DECREF(cpu);
    return rc;
}

static int us_dma_rising(void *h, int which)
{
    UsartObject *o = h;
    PyObject *sig = o->sig[which];
    int connected;
    if (Py_TYPE(sig) == &SignalType) {
        connected = ((SignalObject *)sig)->n > 0;
    } else {
        PyObject *c = PyObject_GetAttr(sig, str_connected);
        if (!c)
            return -1;
        connected = PyObject_IsTrue(c);
        Py_DECREF(c);
        if (connected < 0)
            return -1;
    }
    if (connected || o->warned[which])
        return 0;
    o->warned[which] = 1;
    const char *out = which == DH_USART_OUT_RXREQ ? "ReceiveDmaRequest" : "TransmitDmaRequest";
    PyObject *msg = PyUnicode_FromFormat(
        "%U: the firmware set CR3.%s but the platform wires no %s for it: no DMA transfer will happen "
        "(add `%U: %s -> dmamux1@<request id>`, or pull our platform in with `using` so its "
        ".builtin.repl overlay comes along)",
        o->name, which == DH_USART_OUT_RXREQ ? "DMAR" : "DMAT", out, o->name, out);
    if (!msg)
        return -1;
    PyObject *args[5] = {o->machine, str_warning, o->name, str_dma_not_wired, msg};
    static PyObject *kwn = NULL;
    if (!kwn && !(kwn = Py_BuildValue("(sss)", "source", "what", "message"))) {
        Py_DECREF(msg);
        return -1;
    }
    PyObject *r = PyObject_VectorcallMethod(str_record, args, 2 | PY_VECTORCALL_ARGUMENTS_OFFSET, kwn);
    Py_DECREF(msg);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

static const dh_usart_host usart_host = {
    .now = us_now, .schedule = us_schedule, .cancel = us_cancel, .forget = us_forget,
    .live = us_live, .output = us_output, .tx = us_tx, .poll_hint = us_poll_hint,
    .dma_rising = us_dma_rising,
};

/* A model call that reached Python after us_clear (a collected cycle) has nothing to call. */
static int us_alive(UsartObject *o)
{
    if (o->machine)
        return 1;
    PyErr_SetString(PyExc_RuntimeError, "this USART was cleared");
    return 0;
}

/* ports.h: the MMIO block and the receiving UART endpoint */
static int usp_read(void *self, uint32_t offset, unsigned size, uint64_t *value)
{
    if (!us_alive(self))
        return -1;
    return dh_usart_read(&((UsartObject *)self)->u, offset, size, value);
}

static int usp_write(void *self, uint32_t offset, unsigned size, uint64_t value)
{
    if (!us_alive(self))
        return -1;
    return dh_usart_write(&((UsartObject *)self)->u, offset, size, value);
}

static int usp_rx_char(void *self, int byte, int framing_error)
{
    if (!us_alive(self))
        return -1;
    return dh_usart_rx_char(&((UsartObject *)self)->u, (unsigned)byte & 0x1FF, framing_error);
}

static int usp_bit_time(void *self, int64_t *out)
{
    dh_i128 bit;
    *out = dh_usart_rx_bit_valid(&((UsartObject *)self)->u, &bit) ? (int64_t)bit : 0;
    return 0;
}

static const dh_mmio_ops usart_mmio_ops = {usp_read, usp_write};
static const dh_uart_rx_ops usart_rx_ops = {usp_rx_char, usp_bit_time};

static PyObject *us_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"owner", "machine", "name", "base", "low_power", "frequency", "irq",
                             "rx_request", "tx_request", NULL};
    PyObject *owner, *machine, *name, *base, *irq, *rxr, *txr;
    int low_power;
    long long freq;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOUOpLOOO:Usart", kwlist, &owner, &machine, &name,
                                     &base, &low_power, &freq, &irq, &rxr, &txr))
        return NULL;
    UsartObject *o = (UsartObject *)type->tp_alloc(type, 0);
    if (!o)
        return NULL;
    dh_usart_init(&o->u, low_power, freq, &usart_host, o);
    o->frequency = freq;
    o->owner = Py_NewRef(owner);
    o->machine = Py_NewRef(machine);
    o->name = Py_NewRef(name);
    o->base = Py_NewRef(base);
    o->sig[DH_USART_OUT_IRQ] = Py_NewRef(irq);
    o->sig[DH_USART_OUT_RXREQ] = Py_NewRef(rxr);
    o->sig[DH_USART_OUT_TXREQ] = Py_NewRef(txr);
    o->tx_sink = Py_NewRef(Py_None);
    static const char *fn[DH_USART_EV_N] = {"_tx_done", "_idle_elapsed", "_rto_elapsed"};
    for (int k = 0; k < DH_USART_EV_N; k++) {
        if (!(o->ev_fn[k] = PyObject_GetAttrString((PyObject *)o, fn[k]))
            || !(o->ev_name[k] = PyUnicode_FromFormat("%U.%s", name, fn[k])))
            goto fail;
    }
    PyObject *sched = PyObject_GetAttr(machine, str_scheduler);
    if (!sched)
        goto fail;
    o->sched_at = PyObject_GetAttrString(sched, "at");
    Py_DECREF(sched);
    if (!o->sched_at)
        goto fail;
    o->mmio_port.ops = &usart_mmio_ops;
    o->mmio_port.self = o;
    o->rx_port.ops = &usart_rx_ops;
    o->rx_port.self = o;
    if (!(o->mmio_capsule = PyCapsule_New(&o->mmio_port, DH_MMIO_CAPSULE, NULL))
        || !(o->rx_capsule = PyCapsule_New(&o->rx_port, DH_UART_RX_CAPSULE, NULL)))
        goto fail;
    return (PyObject *)o;
fail:
    Py_DECREF(o);
    return NULL;
}

static int us_traverse(UsartObject *o, visitproc visit, void *arg)
{
    Py_VISIT(o->owner);
    Py_VISIT(o->machine);
    Py_VISIT(o->sched_at);
    Py_VISIT(o->name);
    Py_VISIT(o->base);
    for (int k = 0; k < DH_USART_OUT_N; k++)
        Py_VISIT(o->sig[k]);
    for (int k = 0; k < DH_USART_EV_N; k++) {
        Py_VISIT(o->ev[k]);
        Py_VISIT(o->ev_fn[k]);
        Py_VISIT(o->ev_name[k]);
    }
    Py_VISIT(o->tx_sink);
    Py_VISIT(o->tx_capsule);
    Py_VISIT(o->mmio_capsule);
    Py_VISIT(o->rx_capsule);
    return 0;
}

static int us_clear(UsartObject *o)
{
    Py_CLEAR(o->owner);
    Py_CLEAR(o->machine);
    Py_CLEAR(o->sched_at);
    Py_CLEAR(o->name);
    Py_CLEAR(o->base);
    for (int k = 0; k < DH_USART_OUT_N; k++)
        Py_CLEAR(o->sig[k]);
    for (int k = 0; k < DH_USART_EV_N; k++) {
        Py_CLEAR(o->ev[k]);
        Py_CLEAR(o->ev_fn[k]);
        Py_CLEAR(o->ev_name[k]);
    }
    o->tx_ops = NULL;
    Py_CLEAR(o->tx_sink);
    Py_CLEAR(o->tx_capsule);
    Py_CLEAR(o->mmio_capsule);
    Py_CLEAR(o->rx_capsule);
    return 0;
}

static void us_dealloc(UsartObject *o)
{
    PyObject_GC_UnTrack(o);
    us_clear(o);
    Py_TYPE(o)->tp_free((PyObject *)o);
}

/* An int argument of a register-block method (offset, size, value): its low 64 bits, as
 * Python's & keeps them; anything but an int refused. Shared by the USART, IWDG and GPIO. */
static int arg_u64_masked(PyObject *o, uint64_t *out)
{
    if (!PyLong_Check(o)) {
        PyErr_Format(PyExc_TypeError, "an int is required, not %.100s", Py_TYPE(o)->tp_name);
        return -1;
    }
    *out = PyLong_AsUnsignedLongLongMask(o);       /* Python's & keeps the low bits likewise */
    return *out == (uint64_t)-1 && PyErr_Occurred() ? -1 : 0;
}

/* A native block's Python read(offset, size=4) / write(offset, size, value): its bus ops */
static PyObject *mmio_read_method(const dh_mmio_ops *ops, void *self, PyObject *const *args,
                                  Py_ssize_t nargs)
{
    uint64_t off, size = 4, v;
    if (nargs < 1 || nargs > 2)
        return PyErr_Format(PyExc_TypeError, "read(offset, size=4) takes 1 or 2 arguments");
    if (arg_u64_masked(args[0], &off) < 0 || (nargs == 2 && arg_u64_masked(args[1], &size) < 0))
        return NULL;
    if (ops->read(self, (uint32_t)off, (unsigned)size, &v) < 0)
        return NULL;
    return PyLong_FromUnsignedLongLong(v);
}

static PyObject *mmio_write_method(const dh_mmio_ops *ops, void *self, PyObject *const *args,
                                   Py_ssize_t nargs)
{
    uint64_t off, size, v;
    if (nargs != 3)
        return PyErr_Format(PyExc_TypeError, "write(offset, size, value) takes 3 arguments");
    if (arg_u64_masked(args[0], &off) < 0 || arg_u64_masked(args[1], &size) < 0
        || arg_u64_masked(args[2], &v) < 0)
        return NULL;
    if (ops->write(self, (uint32_t)off, (unsigned)size, v) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *us_read(UsartObject *o, PyObject *const *args, Py_ssize_t nargs)
{
    uint64_t off, size = 4, v;
    if (nargs < 1 || nargs > 2)
        return PyErr_Format(PyExc_TypeError, "read(offset, size=4) takes 1 or 2 arguments");
    if (!us_alive(o) || arg_u64_masked(args[0], &off) < 0
        || (nargs == 2 && arg_u64_masked(args[1], &size) < 0))
        return NULL;
    if (dh_usart_read(&o->u, (uint32_t)off, (unsigned)size, &v) < 0)
        return NULL;
    return PyLong_FromUnsignedLongLong(v);
}

static PyObject *us_write(UsartObject *o, PyObject *const *args, Py_ssize_t nargs)
{
    uint64_t off, size, v;
    if (nargs != 3)
        return PyErr_Format(PyExc_TypeError, "write(offset, size, value) takes 3 arguments");
    if (!us_alive(o) || arg_u64_masked(args[0], &off) < 0 || arg_u64_masked(args[1], &size) < 0
        || arg_u64_masked(args[2], &v) < 0)
        return NULL;
    if (dh_usart_write(&o->u, (uint32_t)off, (unsigned)size, v) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *us_rx_char(UsartObject *o, PyObject *const *args, Py_ssize_t nargs)
{
    uint64_t b;
    int fe = 0;
    if (nargs < 1 || nargs > 2)
        return PyErr_Format(PyExc_TypeError, "rx_char(byte, framing_error=False) takes 1 or 2 arguments");
    if (!us_alive(o) || arg_u64_masked(args[0], &b) < 0
        || (nargs == 2 && (fe = PyObject_IsTrue(args[1])) < 0))
        return NULL;
    if (dh_usart_rx_char(&o->u, (unsigned)(b & 0x1FF), fe) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *us_bit_time_ps(UsartObject *o, PyObject *Py_UNUSED(ignored))
{
    dh_i128 bit;
    if (!dh_usart_rx_bit_valid(&o->u, &bit))
        Py_RETURN_NONE;
    return i128_long(bit);
}

static PyObject *us_timing(UsartObject *o, PyObject *Py_UNUSED(ignored))
{
    dh_usart_timing t;
    dh_usart_timing_of(&o->u, &t);
    PyObject *fb = t.frame_half % 2 ? PyFloat_FromDouble(t.frame_half / 2.0)
                                    : PyLong_FromLong(t.frame_half / 2);
    PyObject *bit = t.bit_valid ? i128_long(t.bit_ps) : Py_NewRef(Py_None);
    PyObject *ch = t.bit_valid ? i128_long(t.char_ps) : Py_NewRef(Py_None);
    PyObject *r = fb && bit && ch ? Py_BuildValue("(OOOi)", bit, fb, ch, t.data_bits) : NULL;
    Py_XDECREF(fb);
    Py_XDECREF(bit);
    Py_XDECREF(ch);
    return r;
}

static PyObject *us_reset(UsartObject *o, PyObject *Py_UNUSED(ignored))
{
    if (!us_alive(o) || dh_usart_reset(&o->u, o->frequency) < 0)
        return NULL;
    Py_RETURN_NONE;
}

#define US_EVENT(fname, cfn)                                                       \
    static PyObject *fname(UsartObject *o, PyObject *Py_UNUSED(ignored))           \
    {                                                                              \
        if (!us_alive(o) || cfn(&o->u) < 0)                                        \
            return NULL;                                                           \
        Py_RETURN_NONE;                                                            \
    }
US_EVENT(us_tx_done, dh_usart_tx_done)
US_EVENT(us_idle_elapsed, dh_usart_idle_elapsed)
US_EVENT(us_rto_elapsed, dh_usart_rto_elapsed)
#undef US_EVENT

static PyObject *us_fifos(UsartObject *o, PyObject *Py_UNUSED(ignored))
{
    PyObject *tx = PyList_New(o->u.ntx), *rx = PyList_New(o->u.nrx);
    if (!tx || !rx)
        goto fail;
    for (int i = 0; i < o->u.ntx; i++) {
        PyObject *v = PyLong_FromLong(o->u.txq[i]);
        if (!v)
            goto fail;
        PyList_SET_ITEM(tx, i, v);
    }
    for (int i = 0; i < o->u.nrx; i++) {
        PyObject *v = Py_BuildValue("(iO)", o->u.rxq[i], o->u.rxfe[i] ? Py_True : Py_False);
        if (!v)
            goto fail;
        PyList_SET_ITEM(rx, i, v);
    }
    return Py_BuildValue("(NN)", tx, rx);
fail:
    Py_XDECREF(tx);
    Py_XDECREF(rx);
    return NULL;
}

static PyObject *us_peek(UsartObject *o, PyObject *arg)
{
    long r = PyLong_AsLong(arg);
    if (r == -1 && PyErr_Occurred())
        return NULL;
    if (r < 0 || r >= DH_USART_NREG)
        return PyErr_Format(PyExc_IndexError, "no register %ld", r);
    return PyLong_FromUnsignedLong(o->u.reg[r]);
}

static PyObject *us_get_events(UsartObject *o, void *Py_UNUSED(c))
{
    PyObject *l = PyList_New(DH_USART_EV_N);
    if (!l)
        return NULL;
    for (int k = 0; k < DH_USART_EV_N; k++)
        PyList_SET_ITEM(l, k, Py_NewRef(o->ev[k] ? o->ev[k] : Py_None));
    return l;
}

static PyObject *us_get_kernel_hz(UsartObject *o, void *Py_UNUSED(c))
{
    return PyLong_FromLongLong(o->u.kernel_hz);
}

static int us_set_kernel_hz(UsartObject *o, PyObject *v, void *Py_UNUSED(c))
{
    int64_t hz;
    if (!v) {
        PyErr_SetString(PyExc_AttributeError, "kernel_hz cannot be deleted");
        return -1;
    }
    PyObject *i = PyNumber_Long(v);                /* the Python model reads int(...) at reset */
    if (!i)
        return -1;
    int rc = as_i64(i, &hz);
    Py_DECREF(i);
    if (rc < 0)
        return -1;
    o->u.kernel_hz = hz;
    return 0;
}

static PyObject *us_get_tx_sink(UsartObject *o, void *Py_UNUSED(c))
{
    return Py_NewRef(o->tx_sink ? o->tx_sink : Py_None);
}

static int us_set_tx_sink(UsartObject *o, PyObject *v, void *Py_UNUSED(c))
{
    if (!v)
        v = Py_None;
    PyObject *cap = NULL;
    const dh_tx_sink_ops *ops = NULL;
    void *self = NULL;
    if (v != Py_None) {
        if (!(cap = optional_attr(v, str_native_tx_sink)))
            return -1;
        if (PyCapsule_IsValid(cap, DH_TX_SINK_CAPSULE)) {
            dh_port *p = PyCapsule_GetPointer(cap, DH_TX_SINK_CAPSULE);
            if (!p) {
                Py_DECREF(cap);
                return -1;
            }
            ops = p->ops;
            self = p->self;
        } else {
            Py_CLEAR(cap);
        }
    }
    Py_INCREF(v);
    Py_XSETREF(o->tx_sink, v);
    Py_XSETREF(o->tx_capsule, cap);
    o->tx_ops = ops;
    o->tx_self = self;
    return 0;
}

static PyObject *us_get_capsule(UsartObject *o, void *which)
{
    PyObject *c = which ? o->rx_capsule : o->mmio_capsule;
    return Py_NewRef(c ? c : Py_None);
}

static PyObject *us_get_count(UsartObject *o, void *which)
{
    return PyLong_FromUnsignedLongLong(*(uint64_t *)((char *)&o->u + (size_t)which));
}

static int us_set_count(UsartObject *o, PyObject *v, void *which)
{
    if (!v) {
        PyErr_SetString(PyExc_AttributeError, "a counter cannot be deleted");
        return -1;
    }
    unsigned long long n = PyLong_AsUnsignedLongLong(v);
    if (n == (unsigned long long)-1 && PyErr_Occurred())
        return -1;
    *(uint64_t *)((char *)&o->u + (size_t)which) = n;
    return 0;
}

#define US_COUNT(f) {#f, (getter)us_get_count, (setter)us_set_count, "counter " #f, \
                     (void *)offsetof(dh_usart, f)}
static PyGetSetDef us_getset[] = {
    {"kernel_hz", (getter)us_get_kernel_hz, (setter)us_set_kernel_hz, "usart_ker_ck in Hz", NULL},
    {"tx_sink", (getter)us_get_tx_sink, (setter)us_set_tx_sink,
     "fn(uart, byte, t_start_ps, bit_time_ps, frame_bits), or None; called in C when it has a "
     "_native_tx_sink capsule", NULL},
    {"events", (getter)us_get_events, NULL, "[TX done, IDLE, RTO] events held (or None)", NULL},
    {"_native_mmio", (getter)us_get_capsule, NULL, "ports.h MMIO block", NULL},
    {"_native_uart_rx", (getter)us_get_capsule, NULL, "ports.h UART receiver", (void *)1},
    US_COUNT(tx_count), US_COUNT(rx_count), US_COUNT(rx_overruns), US_COUNT(rx_framing_errors),
    US_COUNT(rx_dropped),
    {NULL},
};
#undef US_COUNT

static PyMethodDef us_methods[] = {
    {"read", (PyCFunction)(void (*)(void))us_read, METH_FASTCALL, "read(offset, size=4) -> int"},
    {"write", (PyCFunction)(void (*)(void))us_write, METH_FASTCALL, "write(offset, size, value)"},
    {"rx_char", (PyCFunction)(void (*)(void))us_rx_char, METH_FASTCALL,
     "rx_char(byte, framing_error=False): a character whose stop bit arrives now"},
    {"bit_time_ps", (PyCFunction)us_bit_time_ps, METH_NOARGS,
     "The receiver's programmed bit time, or None when the receiver is disabled."},
    {"timing", (PyCFunction)us_timing, METH_NOARGS, "(bit_ps, frame_bits, char_ps, data_bits)"},
    {"reset", (PyCFunction)us_reset, METH_NOARGS, "reset(): registers, state, kernel clock"},
    {"_tx_done", (PyCFunction)us_tx_done, METH_NOARGS, "event: the stop bit is out"},
    {"_idle_elapsed", (PyCFunction)us_idle_elapsed, METH_NOARGS, "event: one idle character"},
    {"_rto_elapsed", (PyCFunction)us_rto_elapsed, METH_NOARGS, "event: receiver timeout"},
    {"fifos", (PyCFunction)us_fifos, METH_NOARGS, "([tx bytes], [(rx byte, framing error)])"},
    {"peek", (PyCFunction)us_peek, METH_O, "peek(i): register i's raw word (offset 4 * i)"},
    {NULL},
};

static PyTypeObject UsartType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "duohil.engines.builtin.native._core.Usart",
    .tp_basicsize = sizeof(UsartObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The STM32H7 USART's state and logic (native/usart.c) for stm32_usart.py.",
    .tp_new = us_new,
    .tp_dealloc = (destructor)us_dealloc,
    .tp_traverse = (traverseproc)us_traverse,
    .tp_clear = (inquiry)us_clear,
    .tp_getset = us_getset,
    .tp_methods = us_methods,
};

/* port_call(capsule, *args): a ports.h operation called from Python, the way a C unit calls it
 * (tests of a model's capsules before its C callers exist). mmio: (offset, size) reads,
 * (offset, size, value) writes; uart_rx: (byte, framing_error) delivers, () gives the bit time;
 * input: (line, level). */
static PyObject *mod_port_call(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 1)
        return PyErr_Format(PyExc_TypeError, "port_call(capsule, *args)");
    PyObject *cap = args[0];
    long long a[3] = {0, 0, 0};
    for (Py_ssize_t i = 1; i < nargs && i <= 3; i++)
        if ((a[i - 1] = PyLong_AsLongLong(args[i])) == -1 && PyErr_Occurred())
            return NULL;
    if (PyCapsule_IsValid(cap, DH_MMIO_CAPSULE)) {
        dh_port *p = PyCapsule_GetPointer(cap, DH_MMIO_CAPSULE);
        const dh_mmio_ops *ops = p->ops;
        if (nargs == 3) {
            uint64_t v;
            if (ops->read(p->self, (uint32_t)a[0], (unsigned)a[1], &v) < 0)
                return NULL;
            return PyLong_FromUnsignedLongLong(v);
        }
        if (nargs == 4) {
            if (ops->write(p->self, (uint32_t)a[0], (unsigned)a[1], (uint64_t)a[2]) < 0)
                return NULL;
            Py_RETURN_NONE;
        }
    } else if (PyCapsule_IsValid(cap, DH_UART_RX_CAPSULE)) {
        dh_port *p = PyCapsule_GetPointer(cap, DH_UART_RX_CAPSULE);
        const dh_uart_rx_ops *ops = p->ops;
        if (nargs == 1) {
            int64_t bit;
            if (ops->bit_time_ps(p->self, &bit) < 0)
                return NULL;
            return PyLong_FromLongLong(bit);
        }
        if (nargs == 3) {
            if (ops->rx_char(p->self, (int)a[0], a[1] != 0) < 0)
                return NULL;
            Py_RETURN_NONE;
        }
    } else if (PyCapsule_IsValid(cap, DH_INPUT_CAPSULE) && nargs == 3) {
        dh_port *p = PyCapsule_GetPointer(cap, DH_INPUT_CAPSULE);
        if (((const dh_input_ops *)p->ops)->set_input(p->self, (int)a[0], a[1] != 0) < 0)
            return NULL;
        Py_RETURN_NONE;
    } else {
        return PyErr_Format(PyExc_TypeError, "port_call: not a ports.h capsule: %R", cap);
    }
    return PyErr_Format(PyExc_TypeError, "port_call: %zd arguments do not fit this capsule", nargs - 1);
}

static int add_usart_types(PyObject *m)
{
#define INTERN(var, s)                                      \
    if (!(var = PyUnicode_InternFromString(s)))             \
        return -1;
    INTERN(str_set_input, "set_input");
    INTERN(str_native_input, "_native_input");
    INTERN(str_cancel, "cancel");
    INTERN(str_cancelled, "cancelled");
    INTERN(str_time, "time");
    INTERN(str_level, "level");
    INTERN(str_set, "set");
    INTERN(str_connected, "connected");
    INTERN(str_native_tx_sink, "_native_tx_sink");
    INTERN(str_warning, "warning");
    INTERN(str_dma_not_wired, "dma_request_not_wired");
#undef INTERN
    if (!(kw_name = Py_BuildValue("(s)", "name")))
        return -1;
    if (PyType_Ready(&SignalType) < 0 || PyType_Ready(&UsartType) < 0)
        return -1;
    Py_INCREF(&SignalType);
    if (PyModule_AddObject(m, "Signal", (PyObject *)&SignalType) < 0) {
        Py_DECREF(&SignalType);
        return -1;
    }
    Py_INCREF(&UsartType);
    if (PyModule_AddObject(m, "Usart", (PyObject *)&UsartType) < 0) {
        Py_DECREF(&UsartType);
        return -1;
    }
    return 0;
}

/* == end of Usart and Signal [usartc] ============================================================ */

/* == Iwdg: the STM32H7 independent watchdog (iwdg.c) [iwdgc] ======================================
 *
 * _core.Iwdg is the base of stm32_iwdg.py's STM32_IndependentWatchdogNative (the one copy):
 * its registers, keys, SR busy bits, window check and expiry deadline live in iwdg.c, so a KR
 * write from the C bus (the `_native_mmio` capsule) is handled without a Python call: the reload
 * reads the time from the CPU's and the scheduler's attributes (machine.now() as machine.py
 * computes it, unless the machine overrides now) and leaves the pending expiry event alone unless
 * the new deadline is earlier. Scheduler events are pushed through machine.scheduler.at with the
 * names "<name>.expiry", "<name>.sr" and the type's own _check/_sr_done as their callables;
 * machine.record("iwdg_window_violation", ...) and machine.system_reset("iwdg") are called where
 * the deleted Python model called them.
 */
#include "iwdg.h"

static PyObject *iw_s_cpu, *iw_s_scheduler, *iw_s_at,
    *iw_s_poll_hint, *iw_s_record, *iw_s_system_reset, *iw_s_cancel, *iw_s_time, *iw_s_violation,
    *iw_s_cause, *iw_kw_name, *iw_kw_violation;

typedef struct {
    PyObject_HEAD
    dh_iwdg w;
    PyObject *machine, *sched, *sched_at, *base;
    PyObject *ev[DH_IWDG_EV_N];          /* the held events (scheduler Events), or NULL */
    PyObject *ev_fn[DH_IWDG_EV_N];       /* self._check, self._sr_done */
    PyObject *ev_name[DH_IWDG_EV_N];     /* "<name>.expiry", "<name>.sr" */
    dh_port mmio_port;
} IwdgObject;

static PyTypeObject IwdgType;

/* -- the host: time, events, poll hint, event log, system reset ------------------------------ */

static int iw_now(void *h, int64_t *out)
{
    return machine_now(((IwdgObject *)h)->machine, out);
}

static int iw_schedule(void *h, int which, dh_i128 t)
{
    IwdgObject *o = h;
    PyObject *none = PyTuple_New(0);
    PyObject *ev = none ? bound_at(o->sched_at, t, o->ev_fn[which], none, o->ev_name[which], iw_kw_name)
                        : NULL;
    Py_XDECREF(none);
    if (!ev)
        return -1;
    Py_XSETREF(o->ev[which], ev);
    return 0;
}

static int iw_cancel(void *h, int which)
{
    IwdgObject *o = h;
    PyObject *ev = o->ev[which];
    if (!ev)
        return 0;
    o->ev[which] = NULL;
    if (PyObject_TypeCheck(ev, &EventType)) {
        ((EventObject *)ev)->cancelled = 1;
    } else {
        PyObject *r = PyObject_CallMethodNoArgs(ev, iw_s_cancel);
        if (!r) {
            Py_DECREF(ev);
            return -1;
        }
        Py_DECREF(r);
    }
    Py_DECREF(ev);
    return 0;
}

static void iw_forget(void *h, int which)
{
    Py_CLEAR(((IwdgObject *)h)->ev[which]);
}

static int iw_held(void *h, int which, int64_t *t)
{
    PyObject *ev = ((IwdgObject *)h)->ev[which];
    if (!ev)
        return 0;
    if (PyObject_TypeCheck(ev, &EventType)) {
        *t = ((EventObject *)ev)->time;
        return 1;
    }
    return get_i64(ev, iw_s_time, t) < 0 ? -1 : 1;
}

static int iw_poll_hint(void *h, int64_t wake)
{
    IwdgObject *o = h;
    PyObject *cpu = PyObject_GetAttr(o->machine, iw_s_cpu);
    if (!cpu)
        return -1;
    if (cpu == Py_None) {
        Py_DECREF(cpu);
        return 0;
    }
    PyObject *w = PyLong_FromLongLong(wake), *r = NULL;
    if (w) {
        PyObject *args[3] = {cpu, o->base, w};
        r = PyObject_VectorcallMethod(iw_s_poll_hint, args, 3 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
        Py_DECREF(w);
    }
    Py_DECREF(cpu);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

static int iw_window_violation(void *h, dh_i128 counter, uint32_t winr)
{
    IwdgObject *o = h;
    PyObject *c = i128_long(counter), *w = c ? PyLong_FromUnsignedLong(winr) : NULL;
    PyObject *r = NULL;
    if (w) {
        PyObject *args[4] = {o->machine, iw_s_violation, c, w};
        r = PyObject_VectorcallMethod(iw_s_record, args, 2 | PY_VECTORCALL_ARGUMENTS_OFFSET, iw_kw_violation);
    }
    Py_XDECREF(c);
    Py_XDECREF(w);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

static int iw_system_reset(void *h)
{
    IwdgObject *o = h;
    PyObject *machine = o->machine;
    Py_INCREF(machine);                           /* a reset may drop what held it */
    PyObject *args[2] = {machine, iw_s_cause};
    PyObject *r = PyObject_VectorcallMethod(iw_s_system_reset, args, 2 | PY_VECTORCALL_ARGUMENTS_OFFSET,
                                            NULL);
    Py_DECREF(machine);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

static const dh_iwdg_host iwdg_host = {
    .now = iw_now, .schedule = iw_schedule, .cancel = iw_cancel, .forget = iw_forget,
    .held = iw_held, .poll_hint = iw_poll_hint, .window_violation = iw_window_violation,
    .system_reset = iw_system_reset,
};

/* A call that reached us before _bind or after iw_clear (a collected cycle) has nothing to call. */
static int iw_bound(IwdgObject *o)
{
    if (o->machine)
        return 1;
    PyErr_SetString(PyExc_RuntimeError, "Iwdg used before _bind(...) or after it was cleared");
    return 0;
}

/* -- ports.h: the register block -------------------------------------------------------------- */

static int iwp_read(void *self, uint32_t offset, unsigned size, uint64_t *value)
{
    IwdgObject *o = self;
    int modelled;
    if (!iw_bound(o))
        return -1;
    Py_INCREF(o);
    int r = dh_iwdg_read(&o->w, offset, size, value, &modelled);
    Py_DECREF(o);
    return r;
}

static int iwp_write(void *self, uint32_t offset, unsigned size, uint64_t value)
{
    IwdgObject *o = self;
    int modelled;
    if (!iw_bound(o))
        return -1;
    Py_INCREF(o);
    int r = dh_iwdg_write(&o->w, offset, size, value, &modelled);
    Py_DECREF(o);
    return r;
}

static const dh_mmio_ops iwdg_mmio_ops = {iwp_read, iwp_write};

/* -- the type ------------------------------------------------------------------------------------ */

static PyObject *iw_new(PyTypeObject *type, PyObject *Py_UNUSED(args), PyObject *Py_UNUSED(kw))
{
    IwdgObject *o = (IwdgObject *)type->tp_alloc(type, 0);
    if (!o)
        return NULL;
    dh_iwdg_init(&o->w, 32000, 4, 1, &iwdg_host, o);
    o->mmio_port.ops = &iwdg_mmio_ops;
    o->mmio_port.self = o;
    return (PyObject *)o;
}

static int iw_traverse(IwdgObject *o, visitproc visit, void *arg)
{
    Py_VISIT(o->machine);
    Py_VISIT(o->sched);
    Py_VISIT(o->sched_at);
    Py_VISIT(o->base);
    for (int k = 0; k < DH_IWDG_EV_N; k++) {
        Py_VISIT(o->ev[k]);
        Py_VISIT(o->ev_fn[k]);
        Py_VISIT(o->ev_name[k]);
    }
    return 0;          /* a heap subclass's type and __dict__ are visited by subtype_traverse */
}

static int iw_clear(IwdgObject *o)
{
    Py_CLEAR(o->machine);
    Py_CLEAR(o->sched);
    Py_CLEAR(o->sched_at);
    Py_CLEAR(o->base);
    for (int k = 0; k < DH_IWDG_EV_N; k++) {
        Py_CLEAR(o->ev[k]);
        Py_CLEAR(o->ev_fn[k]);
        Py_CLEAR(o->ev_name[k]);
    }
    return 0;
}

static void iw_dealloc(IwdgObject *o)
{
    PyObject_GC_UnTrack(o);
    iw_clear(o);
    Py_TYPE(o)->tp_free((PyObject *)o);     /* subtype_dealloc drops a heap subclass's type */
}

/* _bind(machine, name, base, lsi_hz, prescaler, window_option) */
static PyObject *iw_bind(IwdgObject *o, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 6)
        return PyErr_Format(PyExc_TypeError, "_bind(machine, name, base, lsi_hz, prescaler, window_option)");
    PyObject *machine = args[0], *name = args[1], *base = args[2];
    int64_t lsi, pre;
    if (!PyUnicode_Check(name))
        return PyErr_Format(PyExc_TypeError, "_bind: name must be a str");
    if (as_i64(args[3], &lsi) < 0 || as_i64(args[4], &pre) < 0)
        return NULL;
    if (lsi <= 0 || lsi > DH_IWDG_PS_PER_S || pre <= 0 || pre > (1 << 24))
        return PyErr_Format(PyExc_ValueError, "_bind: lsi_hz must be 1 .. 10**12 and prescaler 1 .. 2**24");
    int win = PyObject_IsTrue(args[5]);
    if (win < 0)
        return NULL;
    PyObject *sched = PyObject_GetAttr(machine, iw_s_scheduler);
    if (!sched)
        return NULL;
    PyObject *at = PyObject_GetAttr(sched, iw_s_at);
    PyObject *fn0 = at ? PyObject_GetAttrString((PyObject *)o, "_check") : NULL;
    PyObject *fn1 = fn0 ? PyObject_GetAttrString((PyObject *)o, "_sr_done") : NULL;
    PyObject *n0 = fn1 ? PyUnicode_FromFormat("%U.expiry", name) : NULL;
    PyObject *n1 = n0 ? PyUnicode_FromFormat("%U.sr", name) : NULL;
    if (!n1) {
        Py_DECREF(sched);
        Py_XDECREF(at);
        Py_XDECREF(fn0);
        Py_XDECREF(fn1);
        Py_XDECREF(n0);
        return NULL;
    }
    if (iw_clear(o) < 0)              /* a second _bind: the events held so far are dropped */
        return NULL;
    o->machine = Py_NewRef(machine);
    o->sched = sched;
    o->sched_at = at;
    o->base = Py_NewRef(base);
    o->ev_fn[DH_IWDG_EV_EXPIRY] = fn0;
    o->ev_fn[DH_IWDG_EV_SR] = fn1;
    o->ev_name[DH_IWDG_EV_EXPIRY] = n0;
    o->ev_name[DH_IWDG_EV_SR] = n1;
    dh_iwdg_init(&o->w, lsi, pre, win, &iwdg_host, o);
    Py_RETURN_NONE;
}

static PyObject *iw_read(IwdgObject *o, PyObject *const *args, Py_ssize_t nargs)
{
    return mmio_read_method(&iwdg_mmio_ops, o, args, nargs);
}

static PyObject *iw_write(IwdgObject *o, PyObject *const *args, Py_ssize_t nargs)
{
    return mmio_write_method(&iwdg_mmio_ops, o, args, nargs);
}

static PyObject *iw_reset(IwdgObject *o, PyObject *Py_UNUSED(ignored))
{
    if (!iw_bound(o) || dh_iwdg_reset(&o->w) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *iw_check(IwdgObject *o, PyObject *Py_UNUSED(ignored))
{
    if (!iw_bound(o))
        return NULL;
    Py_INCREF(o);
    int r = dh_iwdg_check(&o->w);
    Py_DECREF(o);
    if (r < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *iw_sr_done(IwdgObject *o, PyObject *Py_UNUSED(ignored))
{
    if (!iw_bound(o))
        return NULL;
    dh_iwdg_sr_done(&o->w);
    Py_RETURN_NONE;
}

static PyObject *iw_divider(IwdgObject *o, PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromLongLong(dh_iwdg_divider(&o->w));
}

static PyObject *iw_timeout_ps(IwdgObject *o, PyObject *Py_UNUSED(ignored))
{
    return i128_long(dh_iwdg_timeout_ps(&o->w));
}

static PyObject *iw_counter(IwdgObject *o, PyObject *Py_UNUSED(ignored))
{
    int64_t now = 0;
    if (o->w.running && (!iw_bound(o) || iw_now(o, &now) < 0))
        return NULL;
    return i128_long(dh_iwdg_counter(&o->w, now));
}

/* registers() -> [KR, PR, RLR, SR, WINR] raw words (KR: the last word written; the bus reads 0) */
static PyObject *iw_registers(IwdgObject *o, PyObject *Py_UNUSED(ignored))
{
    PyObject *l = PyList_New(DH_IWDG_NREG);
    if (!l)
        return NULL;
    for (int r = 0; r < DH_IWDG_NREG; r++) {
        PyObject *v = PyLong_FromUnsignedLong(o->w.reg[r]);
        if (!v) {
            Py_DECREF(l);
            return NULL;
        }
        PyList_SET_ITEM(l, r, v);
    }
    return l;
}

static PyObject *iw_get_deadline(IwdgObject *o, void *Py_UNUSED(c))
{
    if (!o->w.running)
        Py_RETURN_NONE;
    return i128_long((dh_i128)o->w.reload_ps + o->w.period_ps);
}

static PyObject *iw_get_flag(IwdgObject *o, void *which)
{
    return PyBool_FromLong(which ? o->w.unlocked : o->w.running);
}

static PyObject *iw_get_event(IwdgObject *o, void *which)
{
    PyObject *ev = o->ev[which ? DH_IWDG_EV_SR : DH_IWDG_EV_EXPIRY];
    return Py_NewRef(ev ? ev : Py_None);
}

enum { IW_RELOAD_PS, IW_PERIOD_PS, IW_DIVIDER, IW_RELOAD_VALUE };

static PyObject *iw_get_timing(IwdgObject *o, void *which)
{
    switch ((int)(intptr_t)which) {
    case IW_RELOAD_PS:
        return PyLong_FromLongLong(o->w.reload_ps);
    case IW_PERIOD_PS:
        return i128_long(o->w.period_ps);
    case IW_DIVIDER:
        return PyLong_FromLongLong(o->w.divider);
    default:
        return PyLong_FromUnsignedLong(o->w.reload_value);
    }
}

static PyObject *iw_get_mmio(IwdgObject *o, void *Py_UNUSED(c))
{
    return PyCapsule_New(&o->mmio_port, DH_MMIO_CAPSULE, NULL);   /* holds no reference to o */
}

static PyGetSetDef iw_getset[] = {
    {"deadline_ps", (getter)iw_get_deadline, NULL, "expiry time of the running count, or None", NULL},
    {"running", (getter)iw_get_flag, NULL, "started by 0xCCCC (only a reset stops it)", NULL},
    {"unlocked", (getter)iw_get_flag, NULL, "the last key was 0x5555", (void *)1},
    {"_ev", (getter)iw_get_event, NULL, "the pending expiry event, or None", NULL},
    {"_sr_ev", (getter)iw_get_event, NULL, "the pending SR update event, or None", (void *)1},
    {"_reload_ps", (getter)iw_get_timing, NULL, "time of the last start/reload", (void *)IW_RELOAD_PS},
    {"_period_ps", (getter)iw_get_timing, NULL, "timeout counted from _reload_ps", (void *)IW_PERIOD_PS},
    {"_divider", (getter)iw_get_timing, NULL, "LSI divider of the running count", (void *)IW_DIVIDER},
    {"_reload_value", (getter)iw_get_timing, NULL, "RL of the running count", (void *)IW_RELOAD_VALUE},
    {"_native_mmio", (getter)iw_get_mmio, NULL, "ports.h: the register block", NULL},
    {NULL},
};

static PyMethodDef iw_methods[] = {
    {"_bind", (PyCFunction)(void (*)(void))iw_bind, METH_FASTCALL,
     "_bind(machine, name, base, lsi_hz, prescaler, window_option)"},
    {"read", (PyCFunction)(void (*)(void))iw_read, METH_FASTCALL, "read(offset, size=4) -> int"},
    {"write", (PyCFunction)(void (*)(void))iw_write, METH_FASTCALL, "write(offset, size, value)"},
    {"reset", (PyCFunction)iw_reset, METH_NOARGS, "reset(): events cancelled, registers and state reset"},
    {"_check", (PyCFunction)iw_check, METH_NOARGS, "event: the expiry deadline may have passed"},
    {"_sr_done", (PyCFunction)iw_sr_done, METH_NOARGS, "event: PR/RLR/WINR reached the LSI domain"},
    {"divider", (PyCFunction)iw_divider, METH_NOARGS, "defaultPrescaler x 2^min(PR, 6)"},
    {"timeout_ps", (PyCFunction)iw_timeout_ps, METH_NOARGS,
     "Expiry delay a reload would give with the present PR and RLR."},
    {"counter", (PyCFunction)iw_counter, METH_NOARGS, "The down-counter now; RLR_MAX when stopped."},
    {"registers", (PyCFunction)iw_registers, METH_NOARGS, "[KR, PR, RLR, SR, WINR] raw words"},
    {NULL},
};

static PyTypeObject IwdgType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "duohil.engines.builtin.native._core.Iwdg",
    .tp_basicsize = sizeof(IwdgObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The STM32H7 IWDG (native/iwdg.c): the base of stm32_iwdg.STM32_IndependentWatchdogNative.",
    .tp_new = iw_new,
    .tp_dealloc = (destructor)iw_dealloc,
    .tp_traverse = (traverseproc)iw_traverse,
    .tp_clear = (inquiry)iw_clear,
    .tp_methods = iw_methods,
    .tp_getset = iw_getset,
};

static int add_iwdg_type(PyObject *m)
{
#define IW_INTERN(var, s)                                   \
    if (!(var = PyUnicode_InternFromString(s)))             \
        return -1;
    IW_INTERN(iw_s_cpu, "cpu");
    IW_INTERN(iw_s_scheduler, "scheduler");
    IW_INTERN(iw_s_at, "at");
    IW_INTERN(iw_s_poll_hint, "poll_hint");
    IW_INTERN(iw_s_record, "record");
    IW_INTERN(iw_s_system_reset, "system_reset");
    IW_INTERN(iw_s_cancel, "cancel");
    IW_INTERN(iw_s_time, "time");
    IW_INTERN(iw_s_violation, "iwdg_window_violation");
    IW_INTERN(iw_s_cause, "iwdg");
#undef IW_INTERN
    if (!(iw_kw_name = Py_BuildValue("(s)", "name"))
        || !(iw_kw_violation = Py_BuildValue("(ss)", "counter", "winr")))
        return -1;
    if (PyType_Ready(&IwdgType) < 0)
        return -1;
    Py_INCREF(&IwdgType);
    if (PyModule_AddObject(m, "Iwdg", (PyObject *)&IwdgType) < 0) {
        Py_DECREF(&IwdgType);
        return -1;
    }
    return 0;
}

/* == end of Iwdg [iwdgc] ============================================================================ */

/* == Timer: the STM32H7 timers (stm32_timer.c) [timerc] ========================================== */
/* stm32_timer.py's Stm32TimerNative (every STM32_Timer, whatever DUOHIL_MODELS says: the one
 * copy) is a subclass of _core.Timer: the registers, the counter, the preloads, the update event
 * and the encoder state live only here (model: stm32_timer.c). The host callbacks below give the
 * model what it needs from Python: machine.now(), machine.scheduler.at(t, self._on_update,
 * cycle, name="<name>.update"), the IRQ Signal, the listeners fn(timer) (Python callables), the
 * plant's encoder_source and the CPU's poll hint. Capsule `_native_mmio` (ports.h) lets the C bus call
 * the register map directly. Uses i128_long, SignalType, signal_set_level and EventType from the
 * sections above. */

#include "stm32_timer.h"

static PyObject *tm_s_scheduler, *tm_s_at, *tm_s_cancel, *tm_s_time, *tm_s_set,
    *tm_s_cpu, *tm_s_poll_hint, *tm_s_on_update, *tm_s_kw_name;

typedef struct {
    PyObject_HEAD
    dh_tim t;
    PyObject *machine, *name, *base, *irq;
    PyObject *sched_at;               /* machine.scheduler.at */
    PyObject *ev;                     /* the update event held, or NULL */
    PyObject *ev_fn;                  /* self._on_update (bound) */
    PyObject *ev_name;                /* "<name>.update" */
    PyObject *listeners;              /* list of fn(timer) */
    PyObject *encoder_source;         /* callable or NULL (None) */
    dh_port mmio_port;
} TimerObject;

static PyTypeObject TimerType;

/* int(o) as a 128-bit integer (Python's ints, as far as the model's arithmetic needs) */
static int tm_as_i128(PyObject *o, dh_tim_i128 *out)
{
    PyObject *i = PyNumber_Long(o);
    if (!i)
        return -1;
    int overflow;
    long long v = PyLong_AsLongLongAndOverflow(i, &overflow);
    if (v == -1 && PyErr_Occurred()) {
        Py_DECREF(i);
        return -1;
    }
    if (!overflow) {
        Py_DECREF(i);
        *out = v;
        return 0;
    }
    /* beyond 64 bits (rare): i >> 64 and i & (2**64 - 1), no private API */
    PyObject *sh = PyLong_FromLong(64), *mask = PyLong_FromUnsignedLongLong(UINT64_MAX);
    PyObject *hi = sh && mask ? PyNumber_Rshift(i, sh) : NULL;
    PyObject *lo = hi ? PyNumber_And(i, mask) : NULL;
    Py_DECREF(i);
    Py_XDECREF(sh);
    Py_XDECREF(mask);
    int rc = -1;
    if (lo) {
        long long h = PyLong_AsLongLong(hi);
        unsigned long long l = PyLong_AsUnsignedLongLong(lo);
        if (!PyErr_Occurred()) {
            *out = (dh_tim_i128)((unsigned __int128)(uint64_t)h << 64 | l);
            rc = 0;
        } else if (PyErr_ExceptionMatches(PyExc_OverflowError)) {
            PyErr_SetString(PyExc_OverflowError, "timer: an integer beyond 128 bits");
        }
    }
    Py_XDECREF(hi);
    Py_XDECREF(lo);
    return rc;
}

/* A host call after tm_clear (a collected cycle running a callback's last steps) has nothing to
 * call: an error, never a NULL dereference. */
static int tm_cleared(TimerObject *o)
{
    if (o->machine)
        return 0;
    PyErr_SetString(PyExc_RuntimeError, "this timer was cleared");
    return 1;
}

static int tm_now(void *h, int64_t *out)
{
    if (tm_cleared(h))
        return -1;
    return machine_now(((TimerObject *)h)->machine, out);
}

static int tm_schedule(void *h, dh_tim_i128 t, dh_tim_i128 cycle)
{
    TimerObject *o = h;
    if (tm_cleared(o))
        return -1;
    PyObject *c = i128_long(cycle);
    PyObject *cargs = c ? PyTuple_Pack(1, c) : NULL;
    PyObject *ev = cargs ? bound_at(o->sched_at, t, o->ev_fn, cargs, o->ev_name, tm_s_kw_name) : NULL;
    Py_XDECREF(c);
    Py_XDECREF(cargs);
    if (!ev)
        return -1;
    Py_XSETREF(o->ev, ev);
    return 0;
}

static int tm_cancel(void *h)
{
    TimerObject *o = h;
    PyObject *ev = o->ev;
    if (!ev)
        return 0;
    o->ev = NULL;
    int rc = 0;
    if (Py_TYPE(ev) == &EventType) {
        ((EventObject *)ev)->cancelled = 1;
    } else {
        PyObject *r = PyObject_CallMethodNoArgs(ev, tm_s_cancel);
        Py_XDECREF(r);
        rc = r ? 0 : -1;
    }
    Py_DECREF(ev);
    return rc;
}

static void tm_forget(void *h)
{
    Py_CLEAR(((TimerObject *)h)->ev);
}

static int tm_event_time(void *h, int64_t *t)
{
    PyObject *ev = ((TimerObject *)h)->ev;
    if (!ev) {
        PyErr_SetString(PyExc_RuntimeError, "timer: no update event held");
        return -1;
    }
    if (Py_TYPE(ev) == &EventType) {
        *t = ((EventObject *)ev)->time;
        return 0;
    }
    PyObject *tt = PyObject_GetAttr(ev, tm_s_time);
    if (!tt)
        return -1;
    int rc = as_i64(tt, t);
    Py_DECREF(tt);
    return rc;
}

static int tm_irq(void *h, int level)
{
    if (tm_cleared(h))
        return -1;
    PyObject *sig = ((TimerObject *)h)->irq;
    if (Py_TYPE(sig) == &SignalType)
        return signal_set_level((SignalObject *)sig, level);
    PyObject *r = PyObject_CallMethodOneArg(sig, tm_s_set, level ? Py_True : Py_False);  /* Signal.set */
    Py_XDECREF(r);
    return r ? 0 : -1;
}

static int tm_notify(void *h)
{
    TimerObject *o = h;
    if (tm_cleared(o))
        return -1;
    Py_ssize_t n = PyList_GET_SIZE(o->listeners);
    if (n == 0)
        return 0;
    PyObject *copy = PyList_GetSlice(o->listeners, 0, n);     /* list(self._listeners) */
    if (!copy)
        return -1;
    int rc = 0;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(copy) && rc == 0; i++) {
        PyObject *args[1] = {(PyObject *)o};
        PyObject *r = PyObject_Vectorcall(PyList_GET_ITEM(copy, i), args, 1, NULL);
        if (!r)
            rc = -1;
        Py_XDECREF(r);
    }
    Py_DECREF(copy);
    return rc;
}

static int tm_encoder_source(void *h, dh_tim_i128 *pos)
{
    PyObject *src = ((TimerObject *)h)->encoder_source;
    if (!src)
        return 0;
    Py_INCREF(src);
    PyObject *r = PyObject_CallNoArgs(src);
    Py_DECREF(src);
    if (!r)
        return -1;
    int rc = tm_as_i128(r, pos);
    Py_DECREF(r);
    return rc < 0 ? -1 : 1;
}

static int tm_poll_hint(void *h, dh_tim_i128 wake)
{
    TimerObject *o = h;
    if (tm_cleared(o))
        return -1;
    PyObject *cpu = PyObject_GetAttr(o->machine, tm_s_cpu);
    if (!cpu)
        return -1;
    if (cpu == Py_None) {
        Py_DECREF(cpu);
        return 0;
    }
    PyObject *w = i128_long(wake);
    PyObject *r = NULL;
    if (w) {
        PyObject *args[3] = {cpu, o->base, w};
        r = PyObject_VectorcallMethod(tm_s_poll_hint, args, 3 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
        Py_DECREF(w);
    }
    Py_DECREF(cpu);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

static const dh_tim_host timer_host = {
    .now = tm_now, .schedule = tm_schedule, .cancel = tm_cancel, .forget = tm_forget,
    .event_time = tm_event_time, .irq = tm_irq, .notify = tm_notify,
    .encoder_source = tm_encoder_source, .poll_hint = tm_poll_hint,
};

/* A model call before _bind, or after tm_clear (a collected cycle), has nothing to call. */
static int tm_bound(TimerObject *o)
{
    if (o->machine)
        return 1;
    PyErr_SetString(PyExc_RuntimeError, "Timer used before _bind(...) or after it was cleared");
    return 0;
}

/* ports.h: the MMIO block */
static int tmp_read(void *self, uint32_t offset, unsigned size, uint64_t *value)
{
    if (!tm_bound(self))
        return -1;
    return dh_tim_read(&((TimerObject *)self)->t, offset, size, value);
}

static int tmp_write(void *self, uint32_t offset, unsigned size, uint64_t value)
{
    if (!tm_bound(self))
        return -1;
    return dh_tim_write(&((TimerObject *)self)->t, offset, size, value);
}

static const dh_mmio_ops timer_mmio_ops = {tmp_read, tmp_write};

static PyObject *tm_new(PyTypeObject *type, PyObject *Py_UNUSED(args), PyObject *Py_UNUSED(kw))
{
    TimerObject *o = (TimerObject *)type->tp_alloc(type, 0);
    if (!o)
        return NULL;
    dh_tim_init(&o->t, 0xFFFF, 1, 0, 0, &timer_host, o);
    o->mmio_port.ops = &timer_mmio_ops;
    o->mmio_port.self = o;
    return (PyObject *)o;
}

static int tm_traverse(TimerObject *o, visitproc visit, void *arg)
{
    Py_VISIT(o->machine);
    Py_VISIT(o->name);
    Py_VISIT(o->base);
    Py_VISIT(o->irq);
    Py_VISIT(o->sched_at);
    Py_VISIT(o->ev);
    Py_VISIT(o->ev_fn);
    Py_VISIT(o->ev_name);
    Py_VISIT(o->listeners);
    Py_VISIT(o->encoder_source);
    return 0;          /* a heap subclass's type and __dict__ are visited by subtype_traverse */
}

static int tm_clear(TimerObject *o)
{
    Py_CLEAR(o->machine);
    Py_CLEAR(o->name);
    Py_CLEAR(o->base);
    Py_CLEAR(o->irq);
    Py_CLEAR(o->sched_at);
    Py_CLEAR(o->ev);
    o->t.ev_held = 0;
    Py_CLEAR(o->ev_fn);
    Py_CLEAR(o->ev_name);
    Py_CLEAR(o->listeners);
    Py_CLEAR(o->encoder_source);
    return 0;
}

static void tm_dealloc(TimerObject *o)
{
    PyObject_GC_UnTrack(o);
    tm_clear(o);
    Py_TYPE(o)->tp_free((PyObject *)o);     /* subtype_dealloc drops a heap subclass's type */
}

/* _bind(machine, name, base, initial_limit, frequency, advanced, irq): stm32_timer.py's
 * __init__ past the props (the frequency already checked > 0); epoch = machine.now() */
static PyObject *tm_bind(TimerObject *o, PyObject *const *args, Py_ssize_t nargs)
{
    int64_t limit, hz, now;
    if (nargs != 7)
        return PyErr_Format(PyExc_TypeError,
                            "_bind(machine, name, base, initial_limit, frequency, advanced, irq)");
    if (!PyUnicode_Check(args[1]))
        return PyErr_Format(PyExc_TypeError, "the timer's name must be a str");
    if (as_i64(args[3], &limit) < 0 || as_i64(args[4], &hz) < 0)
        return NULL;
    if (hz <= 0)
        return PyErr_Format(PyExc_ValueError, "%U: frequency must be positive, got %lld", args[1],
                            (long long)hz);
    int advanced = PyObject_IsTrue(args[5]);
    if (advanced < 0)
        return NULL;
    PyObject *sched = PyObject_GetAttr(args[0], tm_s_scheduler);
    if (!sched)
        return NULL;
    PyObject *at = PyObject_GetAttr(sched, tm_s_at);
    Py_DECREF(sched);
    if (!at)
        return NULL;
    PyObject *fn = PyObject_GetAttr((PyObject *)o, tm_s_on_update);
    PyObject *evname = fn ? PyUnicode_FromFormat("%U.update", args[1]) : NULL;
    PyObject *listeners = evname ? PyList_New(0) : NULL;
    if (!listeners) {
        Py_DECREF(at);
        Py_XDECREF(fn);
        Py_XDECREF(evname);
        return NULL;
    }
    tm_clear(o);
    o->machine = Py_NewRef(args[0]);
    o->name = Py_NewRef(args[1]);
    o->base = Py_NewRef(args[2]);
    o->irq = Py_NewRef(args[6]);
    o->sched_at = at;
    o->ev_fn = fn;
    o->ev_name = evname;
    o->listeners = listeners;
    if (tm_now(o, &now) < 0) {
        tm_clear(o);
        return NULL;
    }
    dh_tim_init(&o->t, limit, hz, advanced, now, &timer_host, o);
    Py_RETURN_NONE;
}

static PyObject *tm_read(TimerObject *o, PyObject *const *args, Py_ssize_t nargs)
{
    uint32_t off;
    unsigned size;
    uint64_t v;
    if (!tm_bound(o) || dm_access_args(args, nargs, 2, &off, &size, NULL) < 0)
        return NULL;
    if (dh_tim_read(&o->t, off, size, &v) < 0)
        return NULL;
    return PyLong_FromUnsignedLongLong(v);
}

static PyObject *tm_write(TimerObject *o, PyObject *const *args, Py_ssize_t nargs)
{
    uint32_t off;
    unsigned size;
    uint64_t v;
    if (!tm_bound(o) || dm_access_args(args, nargs, 3, &off, &size, &v) < 0)
        return NULL;
    if (dh_tim_write(&o->t, off, size, v) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *tm_reset(TimerObject *o, PyObject *Py_UNUSED(ignored))
{
    if (!tm_bound(o) || dh_tim_reset(&o->t) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *tm_on_update(TimerObject *o, PyObject *arg)
{
    dh_tim_i128 cycle;
    if (!tm_bound(o) || tm_as_i128(arg, &cycle) < 0)
        return NULL;
    if (dh_tim_on_update(&o->t, cycle) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *tm_add_listener(TimerObject *o, PyObject *fn)
{
    if (!tm_bound(o) || PyList_Append(o->listeners, fn) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static int tm_channel(PyObject *arg, int *ch)
{
    long c = PyLong_AsLong(arg);
    if (c == -1 && PyErr_Occurred())
        return -1;
    if (c < 1 || c > 4) {
        PyErr_Format(PyExc_ValueError, "timer channel must be 1..4, got %ld", c);
        return -1;
    }
    *ch = (int)c;
    return 0;
}

static PyObject *tm_output_enabled(TimerObject *o, PyObject *arg)
{
    int ch;
    if (tm_channel(arg, &ch) < 0)
        return NULL;
    return PyBool_FromLong(dh_tim_output_enabled(&o->t, ch));
}

static PyObject *tm_channel_duty(TimerObject *o, PyObject *arg)
{
    int ch;
    if (tm_channel(arg, &ch) < 0)
        return NULL;
    return PyFloat_FromDouble(dh_tim_channel_duty(&o->t, ch));
}

static PyObject *tm_counter(TimerObject *o, PyObject *Py_UNUSED(ignored))
{
    dh_tim_i128 c;
    if (!tm_bound(o) || dh_tim_counter(&o->t, &c) < 0)
        return NULL;
    return i128_long(c);
}

static PyObject *tm_update_period_ps(TimerObject *o, PyObject *Py_UNUSED(ignored))
{
    return i128_long(dh_tim_update_period_ps(&o->t));
}

static PyObject *tm_set_encoder_count(TimerObject *o, PyObject *arg)
{
    dh_tim_i128 pos;
    if (!tm_bound(o) || tm_as_i128(arg, &pos) < 0)
        return NULL;
    if (dh_tim_set_encoder_count(&o->t, pos) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* the model's state under stm32_timer.py's attribute names (differential tests, inspection) */
static PyObject *tm_state(TimerObject *o, PyObject *Py_UNUSED(ignored))
{
    const dh_tim *t = &o->t;
    PyObject *cnt = i128_long(t->cnt), *anchor = i128_long(t->anchor);
    PyObject *enc = t->enc_valid ? i128_long(t->enc_pos) : Py_NewRef(Py_None);
    PyObject *ccr = Py_BuildValue("[kkkk]", (unsigned long)t->ccr_active[0],
                                  (unsigned long)t->ccr_active[1], (unsigned long)t->ccr_active[2],
                                  (unsigned long)t->ccr_active[3]);
    PyObject *regs = PyList_New(DH_TIM_NREG);
    if (!cnt || !anchor || !enc || !ccr || !regs)
        goto fail;
    for (int i = 0; i < DH_TIM_NREG; i++) {
        PyObject *v = PyLong_FromUnsignedLong(t->reg[i]);
        if (!v)
            goto fail;
        PyList_SET_ITEM(regs, i, v);
    }
    return Py_BuildValue("{s:L,s:L,s:N,s:N,s:N,s:N,s:k,s:k,s:N,s:N,s:L,s:N}",
                         "_hz", (long long)t->hz, "_epoch_ps", (long long)t->epoch_ps,
                         "_running", PyBool_FromLong(t->running), "_cnt", cnt, "_anchor", anchor,
                         "_lazy", PyBool_FromLong(t->lazy), "_psc_active", (unsigned long)t->psc_active,
                         "_arr_active", (unsigned long)t->arr_active, "_ccr_active", ccr,
                         "_enc_pos", enc, "updates", (long long)t->updates, "regs", regs);
fail:
    Py_XDECREF(cnt);
    Py_XDECREF(anchor);
    Py_XDECREF(enc);
    Py_XDECREF(ccr);
    Py_XDECREF(regs);
    return NULL;
}

static PyObject *tm_get_timer_hz(TimerObject *o, void *Py_UNUSED(c))
{
    return PyLong_FromLongLong(o->t.hz);
}

static int tm_set_timer_hz(TimerObject *o, PyObject *v, void *Py_UNUSED(c))
{
    if (!v) {
        PyErr_SetString(PyExc_AttributeError, "timer_hz cannot be deleted");
        return -1;
    }
    dh_tim_i128 hz;
    if (!tm_bound(o) || tm_as_i128(v, &hz) < 0)                 /* int(hz) */
        return -1;
    if (hz <= 0)
        return 0;
    if (hz > INT64_MAX) {
        PyErr_SetString(PyExc_OverflowError, "timer_hz beyond 2**63-1 Hz");
        return -1;
    }
    return dh_tim_set_hz(&o->t, (int64_t)hz);
}

static PyObject *tm_get_pwm_duty(TimerObject *o, void *Py_UNUSED(c))
{
    return PyFloat_FromDouble(dh_tim_channel_duty(&o->t, 1));
}

static PyObject *tm_get_encoder_mode(TimerObject *o, void *Py_UNUSED(c))
{
    return PyBool_FromLong(dh_tim_encoder_mode(&o->t));
}

static PyObject *tm_get_encoder_source(TimerObject *o, void *Py_UNUSED(c))
{
    return Py_NewRef(o->encoder_source ? o->encoder_source : Py_None);
}

static int tm_set_encoder_source(TimerObject *o, PyObject *v, void *Py_UNUSED(c))
{
    Py_XSETREF(o->encoder_source, v && v != Py_None ? Py_NewRef(v) : NULL);
    return 0;
}

static PyObject *tm_get_updates(TimerObject *o, void *Py_UNUSED(c))
{
    return PyLong_FromLongLong(o->t.updates);
}

static int tm_set_updates(TimerObject *o, PyObject *v, void *Py_UNUSED(c))
{
    int64_t n;
    if (!v) {
        PyErr_SetString(PyExc_AttributeError, "updates cannot be deleted");
        return -1;
    }
    if (as_i64(v, &n) < 0)
        return -1;
    o->t.updates = n;
    return 0;
}

static PyObject *tm_get_width_mask(TimerObject *o, void *Py_UNUSED(c))
{
    return PyLong_FromUnsignedLong(o->t.width_mask);
}

static PyObject *tm_get_advanced(TimerObject *o, void *Py_UNUSED(c))
{
    return PyBool_FromLong(o->t.advanced);
}

static PyObject *tm_get_update_ev(TimerObject *o, void *Py_UNUSED(c))
{
    return Py_NewRef(o->ev ? o->ev : Py_None);
}

static PyObject *tm_get_listeners(TimerObject *o, void *Py_UNUSED(c))
{
    if (!tm_bound(o))
        return NULL;
    return Py_NewRef(o->listeners);
}

static PyObject *tm_get_unmodeled(TimerObject *o, void *Py_UNUSED(c))
{
    return PyLong_FromUnsignedLongLong(o->t.unmodeled);
}

static PyObject *tm_get_mmio(TimerObject *o, void *Py_UNUSED(c))
{
    return PyCapsule_New(&o->mmio_port, DH_MMIO_CAPSULE, NULL);
}

static PyGetSetDef tm_getset[] = {
    {"timer_hz", (getter)tm_get_timer_hz, (setter)tm_set_timer_hz,
     "kernel clock in Hz (the RCC model assigns it; <= 0 or unchanged is ignored)", NULL},
    {"pwm_duty", (getter)tm_get_pwm_duty, NULL, "channel 1 duty (the motor drive on TIM1)", NULL},
    {"encoder_mode", (getter)tm_get_encoder_mode, NULL, "SMCR.SMS is 1, 2 or 3", NULL},
    {"encoder_source", (getter)tm_get_encoder_source, (setter)tm_set_encoder_source,
     "fn() -> the plant's position, called before CNT is read in encoder mode; or None", NULL},
    {"updates", (getter)tm_get_updates, (setter)tm_set_updates, "update events so far", NULL},
    {"width_mask", (getter)tm_get_width_mask, NULL, "0xFFFF or 0xFFFFFFFF (TIM2/TIM5)", NULL},
    {"advanced", (getter)tm_get_advanced, NULL, "TIM1/TIM8: outputs need BDTR.MOE", NULL},
    {"_update_ev", (getter)tm_get_update_ev, NULL, "the update event held, or None", NULL},
    {"_listeners", (getter)tm_get_listeners, NULL, "the listeners (the list itself)", NULL},
    {"unmodeled_accesses", (getter)tm_get_unmodeled, NULL, "accesses to offsets with no register",
     NULL},
    {"_native_mmio", (getter)tm_get_mmio, NULL, "ports.h: the register block", NULL},
    {NULL},
};

static PyMethodDef tm_methods[] = {
    {"_bind", (PyCFunction)(void (*)(void))tm_bind, METH_FASTCALL,
     "_bind(machine, name, base, initial_limit, frequency, advanced, irq): wire the model."},
    {"read", (PyCFunction)(void (*)(void))tm_read, METH_FASTCALL, "read(offset, size) -> int"},
    {"write", (PyCFunction)(void (*)(void))tm_write, METH_FASTCALL, "write(offset, size, value)"},
    {"reset", (PyCFunction)tm_reset, METH_NOARGS, "reset(): registers, state, kernel clock"},
    {"_on_update", (PyCFunction)tm_on_update, METH_O, "event: the update due at kernel cycle n"},
    {"add_listener", (PyCFunction)tm_add_listener, METH_O,
     "fn(timer) after any change that may alter a channel's output (duty, enable)."},
    {"output_enabled", (PyCFunction)tm_output_enabled, METH_O, "output_enabled(ch) -> bool"},
    {"channel_duty", (PyCFunction)tm_channel_duty, METH_O,
     "Fraction of time OCx is at its active (high) level, 0 while the output is off."},
    {"counter", (PyCFunction)tm_counter, METH_NOARGS, "CNT now, as the firmware would read it."},
    {"update_period_ps", (PyCFunction)tm_update_period_ps, METH_NOARGS,
     "Time between update events with the active PSC/ARR (rounded down to whole ps)."},
    {"set_encoder_count", (PyCFunction)tm_set_encoder_count, METH_O,
     "The axis is at `position` quadrature edges; count the change since the last call."},
    {"_state", (PyCFunction)tm_state, METH_NOARGS, "the model's state (tests, inspection)"},
    {NULL},
};

static PyTypeObject TimerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "duohil.engines.builtin.native._core.Timer",
    .tp_basicsize = sizeof(TimerObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "STM32H7 TIMx (native/stm32_timer.c): the base of stm32_timer.Stm32TimerNative.",
    .tp_new = tm_new,
    .tp_dealloc = (destructor)tm_dealloc,
    .tp_traverse = (traverseproc)tm_traverse,
    .tp_clear = (inquiry)tm_clear,
    .tp_methods = tm_methods,
    .tp_getset = tm_getset,
};

static int add_timer_type(PyObject *m)
{
#define TM_INTERN(var, s)                                   \
    if (!(var = PyUnicode_InternFromString(s)))             \
        return -1;
    TM_INTERN(tm_s_scheduler, "scheduler");
    TM_INTERN(tm_s_at, "at");
    TM_INTERN(tm_s_cancel, "cancel");
    TM_INTERN(tm_s_time, "time");
    TM_INTERN(tm_s_set, "set");
    TM_INTERN(tm_s_cpu, "cpu");
    TM_INTERN(tm_s_poll_hint, "poll_hint");
    TM_INTERN(tm_s_on_update, "_on_update");
#undef TM_INTERN
    if (!(tm_s_kw_name = Py_BuildValue("(s)", "name")))
        return -1;
    if (PyType_Ready(&TimerType) < 0)
        return -1;
    Py_INCREF(&TimerType);
    if (PyModule_AddObject(m, "Timer", (PyObject *)&TimerType) < 0) {
        Py_DECREF(&TimerType);
        return -1;
    }
    return 0;
}

/* == end of Timer [timerc] ======================================================================= */

/* == SysTick: the Cortex-M7 SysTick (systick.c) [systickc] ======================================
 * nvic.py's Nvic holds one _core.SysTick: the counter, COUNTFLAG,
 * the reload rules, CLKSOURCE and the core clock, and the wrap event live only here (model:
 * systick.c), reaching the NVIC's exception state through the _core.Nvic it was made with (the
 * pending bit, st_waiting). The wrap event is pushed on the C heap with nvic.py's name
 * ("<nvic>.systick"), time and sequence number and this object's _st_wrap as its callable, so
 * a wrap makes no Python call unless SysTick's pend must stop a running slice (cpu.kick()). The
 * `_native_mmio` capsule (ports.h) serves the whole SCS page for the C bus: SYST_CSR/RVR/CVR/CALIB
 * (offsets 0x10..0x1F) in C, every other SCS register by one vectorcall of the bank's read/write
 * (set_fallback), as the bus called them before. A CSR read that finds COUNTFLAG clear calls
 * machine.cpu.poll_hint(base, wake) as Peripheral.poll_hint does. Uses get_truth, get_i64,
 * i128_long, c_at, lk_empty_tuple, EventType, SchedType, NvicType and the str_* names above. */

#include "systick.h"

static PyObject *st_s_kick, *st_s_poll_hint, *st_s_cancel, *st_s_wrap;

typedef struct {
    PyObject_HEAD
    dh_systick s;
    PyObject *nvic_c;                 /* the _core.Nvic whose state s.nvic points into */
    PyObject *owner;                  /* nvic.py's Nvic: its cpu (hz, executing, kick) */
    PyObject *machine, *sched, *base;
    PyObject *ev;                     /* the wrap event held, or NULL */
    PyObject *ev_fn;                  /* self._st_wrap (bound) */
    PyObject *ev_name;                /* "<nvic>.systick" */
    PyObject *fb_read, *fb_write;     /* the SCS bank's read/write for the other registers */
    dh_port mmio_port;
} SysTickObject;

static PyTypeObject SysTickType;

static int sy_bound(SysTickObject *o)
{
    if (o->machine)
        return 1;
    PyErr_SetString(PyExc_RuntimeError, "SysTick used before _bind(...) or after it was cleared");
    return 0;
}

/* -- the host ---------------------------------------------------------------------------------- */

static int sy_now(void *h, int64_t *out)
{
    SysTickObject *o = h;
    return sy_bound(o) ? machine_now(o->machine, out) : -1;
}

static int sy_cpu_hz(void *h, int need, int *has, int64_t *hz)
{
    SysTickObject *o = h;
    if (!sy_bound(o))
        return -1;
    PyObject *cpu = PyObject_GetAttr(o->owner, str_cpu);
    if (!cpu)
        return -1;
    *has = cpu != Py_None;
    int rc = *has && need ? get_i64(cpu, str_hz, hz) : 0;
    Py_DECREF(cpu);
    return rc;
}

static int sy_schedule(void *h, dh_i128 t)
{
    SysTickObject *o = h;
    if (!sy_bound(o))
        return -1;
    if (t > INT64_MAX) {                     /* what the scheduler's `at` says of such a time */
        PyErr_SetString(PyExc_OverflowError,
                        "time or sequence number beyond 2**63-1 ps (106 days of virtual time)");
        return -1;
    }
    PyObject *ev = c_at(o->sched, t < INT64_MIN ? INT64_MIN : (int64_t)t, o->ev_fn, lk_empty_tuple,
                        o->ev_name);
    if (!ev)
        return -1;
    Py_XSETREF(o->ev, ev);
    return 0;
}

static int sy_cancel(void *h)
{
    SysTickObject *o = h;
    PyObject *ev = o->ev;
    if (!ev)
        return 0;
    o->ev = NULL;
    int rc = 0;
    if (PyObject_TypeCheck(ev, &EventType)) {
        ((EventObject *)ev)->cancelled = 1;
    } else {
        PyObject *r = PyObject_CallMethodNoArgs(ev, st_s_cancel);
        Py_XDECREF(r);
        rc = r ? 0 : -1;
    }
    Py_DECREF(ev);
    return rc;
}

static void sy_forget(void *h)
{
    Py_CLEAR(((SysTickObject *)h)->ev);
}

/* Peripheral.poll_hint: machine.cpu.poll_hint(base, wake) when the machine has a CPU */
static int sy_poll_hint(void *h, dh_i128 wake)
{
    SysTickObject *o = h;
    if (!sy_bound(o))
        return -1;
    PyObject *cpu = PyObject_GetAttr(o->machine, str_cpu);
    if (!cpu)
        return -1;
    if (cpu == Py_None) {
        Py_DECREF(cpu);
        return 0;
    }
    PyObject *w = i128_long(wake), *r = NULL;
    if (w) {
        PyObject *args[3] = {cpu, o->base, w};
        r = PyObject_VectorcallMethod(st_s_poll_hint, args, 3 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
        Py_DECREF(w);
    }
    Py_DECREF(cpu);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

/* nvic.py's _kick: the Nvic's cpu.kick() while that CPU executes */
static int sy_kick(void *h)
{
    SysTickObject *o = h;
    if (!sy_bound(o))
        return -1;
    PyObject *cpu = PyObject_GetAttr(o->owner, str_cpu);
    if (!cpu)
        return -1;
    int rc = 0;
    if (cpu != Py_None) {
        int ex = get_truth(cpu, str_executing);
        if (ex > 0) {
            PyObject *r = PyObject_CallMethodNoArgs(cpu, st_s_kick);
            Py_XDECREF(r);
            rc = r ? 0 : -1;
        } else {
            rc = ex;
        }
    }
    Py_DECREF(cpu);
    return rc;
}

static int sy_zero_hz(void *Py_UNUSED(h))
{
    PyErr_SetString(PyExc_ZeroDivisionError, "integer division or modulo by zero");
    return -1;
}

static const dh_systick_host systick_host = {
    .now = sy_now, .cpu_hz = sy_cpu_hz, .schedule = sy_schedule, .cancel = sy_cancel,
    .forget = sy_forget, .poll_hint = sy_poll_hint, .kick = sy_kick, .zero_hz = sy_zero_hz,
};

/* -- ports.h: the SCS page ------------------------------------------------------------------- */

static int syp_read(void *self, uint32_t offset, unsigned size, uint64_t *value)
{
    SysTickObject *o = self;
    if (!sy_bound(o))
        return -1;
    if (offset - 0x10u < 0x10u) {
        Py_INCREF(o);
        int rc = dh_systick_read(&o->s, offset - 0x10u, size, value);
        Py_DECREF(o);
        return rc;
    }
    if (!o->fb_read) {
        PyErr_SetString(PyExc_RuntimeError, "SysTick: set_fallback(read, write) first");
        return -1;
    }
    PyObject *fn = o->fb_read, *off = PyLong_FromUnsignedLong(offset);
    PyObject *sz = off ? PyLong_FromLong((long)size) : NULL, *v = NULL;
    if (sz) {
        PyObject *argv[2] = {off, sz};
        Py_INCREF(fn);
        v = PyObject_Vectorcall(fn, argv, 2, NULL);
        Py_DECREF(fn);
    }
    Py_XDECREF(off);
    Py_XDECREF(sz);
    if (!v)
        return -1;
    unsigned long long x = PyLong_AsUnsignedLongLongMask(v);     /* as the bus converts it */
    Py_DECREF(v);
    if (x == (unsigned long long)-1 && PyErr_Occurred())
        return -1;
    *value = x;
    return 0;
}

/* [scsops] The SCB's cache maintenance registers (DCIMVAC ... BPIALL, 0xF50-0xF78), written by
 * the firmware around every DMA transfer (~2 000 a virtual second of nominal traffic): for a
 * 32-bit write, nvic.py's _cache_op in C. The D-cache's operation is called directly when
 * machine.cache is dcache.py's DCache (its _c a _core.DCache), with the address
 * value & ~0x1F as _cache_op passes it; the I-cache and branch-predictor operations (ICIALLU,
 * ICIMVAU, BPIALL) and a machine without a cache do nothing, as there. Any other cache object, a
 * partial write or an offset the bank does not define goes through the bank as before. 1 handled,
 * 0 not, -1 error. */
static PyObject *str_sy_cache, *str_sy_c;

static int syp_cache_op(SysTickObject *o, uint32_t offset, unsigned size, uint64_t value)
{
    if (size != 4 || offset < 0xF50 || offset > 0xF78 || (offset & 3) || offset == 0xF54)
        return 0;
    int (*by_addr)(dc_cache *, uint64_t) = NULL;
    int (*all)(dc_cache *) = NULL;
    switch (offset) {
    case 0xF5C: by_addr = dc_invalidate; break;
    case 0xF60: all = dc_invalidate_all; break;
    case 0xF64: /* DCCMVAU */
    case 0xF68: by_addr = dc_clean; break;
    case 0xF6C: all = dc_clean_all; break;
    case 0xF70: by_addr = dc_clean_invalidate; break;
    case 0xF74: all = dc_clean_invalidate_all; break;
    default: return 1;             /* 0xF50 ICIALLU, 0xF58 ICIMVAU, 0xF78 BPIALL */
    }
    if (!str_sy_cache && (!(str_sy_cache = PyUnicode_InternFromString("cache"))
                          || !(str_sy_c = PyUnicode_InternFromString("_c"))))
        return -1;
    PyObject *cache, *c = NULL;
    if (_PyObject_LookupAttr(o->machine, str_sy_cache, &cache) < 0)
        return -1;
    if (!cache || cache == Py_None) {
        Py_XDECREF(cache);
        return 1;
    }
    int rc = _PyObject_LookupAttr(cache, str_sy_c, &c);
    Py_DECREF(cache);
    if (rc < 0)
        return -1;
    if (!c || !PyObject_TypeCheck(c, &DCacheType)) {
        Py_XDECREF(c);
        return 0;
    }
    dc_cache *dc = &((DCacheObject *)c)->dc;
    rc = by_addr ? by_addr(dc, (uint64_t)((uint32_t)value & ~0x1Fu)) : all(dc);
    Py_DECREF(c);
    return rc < 0 ? -1 : 1;
}

static int syp_write(void *self, uint32_t offset, unsigned size, uint64_t value)
{
    SysTickObject *o = self;
    if (!sy_bound(o))
        return -1;
    if (offset - 0x10u < 0x10u) {
        Py_INCREF(o);
        int rc = dh_systick_write(&o->s, offset - 0x10u, size, value);
        Py_DECREF(o);
        return rc;
    }
    int op = syp_cache_op(o, offset, size, value);          /* [scsops] */
    if (op)
        return op < 0 ? -1 : 0;
    if (!o->fb_write) {
        PyErr_SetString(PyExc_RuntimeError, "SysTick: set_fallback(read, write) first");
        return -1;
    }
    PyObject *fn = o->fb_write, *off = PyLong_FromUnsignedLong(offset);
    PyObject *sz = off ? PyLong_FromLong((long)size) : NULL;
    PyObject *v = sz ? PyLong_FromUnsignedLongLong(value) : NULL, *r = NULL;
    if (v) {
        PyObject *argv[3] = {off, sz, v};
        Py_INCREF(fn);
        r = PyObject_Vectorcall(fn, argv, 3, NULL);
        Py_DECREF(fn);
    }
    Py_XDECREF(off);
    Py_XDECREF(sz);
    Py_XDECREF(v);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

static const dh_mmio_ops systick_mmio_ops = {syp_read, syp_write};

/* -- the type ---------------------------------------------------------------------------------- */

/* SysTick(nvic): the SysTick of the SCS whose exception state is `nvic` (a _core.Nvic) */
static PyObject *sy_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    PyObject *nvic;
    static char *kwlist[] = {"nvic", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!:SysTick", kwlist, &NvicType, &nvic))
        return NULL;
    SysTickObject *o = (SysTickObject *)type->tp_alloc(type, 0);
    if (!o)
        return NULL;
    o->nvic_c = Py_NewRef(nvic);
    dh_systick_init(&o->s, &((NvicObject *)nvic)->v, 0, &systick_host, o);
    o->mmio_port.ops = &systick_mmio_ops;
    o->mmio_port.self = o;
    return (PyObject *)o;
}

static int sy_traverse(SysTickObject *o, visitproc visit, void *arg)
{
    Py_VISIT(o->nvic_c);
    Py_VISIT(o->owner);
    Py_VISIT(o->machine);
    Py_VISIT(o->sched);
    Py_VISIT(o->base);
    Py_VISIT(o->ev);
    Py_VISIT(o->ev_fn);
    Py_VISIT(o->ev_name);
    Py_VISIT(o->fb_read);
    Py_VISIT(o->fb_write);
    return 0;
}

/* Everything but nvic_c, which s.nvic points into for as long as this object lives. */
static int sy_clear(SysTickObject *o)
{
    Py_CLEAR(o->owner);
    Py_CLEAR(o->machine);
    Py_CLEAR(o->sched);
    Py_CLEAR(o->base);
    Py_CLEAR(o->ev);
    Py_CLEAR(o->ev_fn);
    Py_CLEAR(o->ev_name);
    Py_CLEAR(o->fb_read);
    Py_CLEAR(o->fb_write);
    return 0;
}

static void sy_dealloc(SysTickObject *o)
{
    PyObject_GC_UnTrack(o);
    sy_clear(o);
    Py_CLEAR(o->nvic_c);
    Py_TYPE(o)->tp_free((PyObject *)o);
}

/* _bind(owner, machine, name, base, systick_frequency) */
static PyObject *sy_bind(SysTickObject *o, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5)
        return PyErr_Format(PyExc_TypeError, "_bind(owner, machine, name, base, systick_frequency)");
    PyObject *owner = args[0], *machine = args[1], *name = args[2], *base = args[3];
    int64_t fixed;
    if (!PyUnicode_Check(name))
        return PyErr_Format(PyExc_TypeError, "_bind: name must be a str");
    if (as_i64(args[4], &fixed) < 0)
        return NULL;
    PyObject *sched = PyObject_GetAttr(machine, str_scheduler);
    PyObject *fn = sched ? PyObject_GetAttr((PyObject *)o, st_s_wrap) : NULL;
    PyObject *evname = fn ? PyUnicode_FromFormat("%U.systick", name) : NULL;
    if (!evname) {
        Py_XDECREF(sched);
        Py_XDECREF(fn);
        return NULL;
    }
    sy_clear(o);                                 /* a second _bind: the event held is dropped */
    o->owner = Py_NewRef(owner);
    o->machine = Py_NewRef(machine);
    o->sched = sched;
    o->base = Py_NewRef(base);
    o->ev_fn = fn;
    o->ev_name = evname;
    dh_systick_init(&o->s, &((NvicObject *)o->nvic_c)->v, fixed, &systick_host, o);
    Py_RETURN_NONE;
}

static PyObject *sy_set_fallback(SysTickObject *o, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyCallable_Check(args[0]) || !PyCallable_Check(args[1]))
        return PyErr_Format(PyExc_TypeError, "set_fallback(read, write): two callables");
    Py_XSETREF(o->fb_read, Py_NewRef(args[0]));
    Py_XSETREF(o->fb_write, Py_NewRef(args[1]));
    Py_RETURN_NONE;
}

static int sy_idx(PyObject *arg, int *idx)
{
    long i = PyLong_AsLong(arg);
    if (i == -1 && PyErr_Occurred())
        return -1;
    if (i < 0 || i >= DH_ST_NREG) {
        PyErr_Format(PyExc_ValueError, "SysTick: register index %ld outside 0..%d", i, DH_ST_NREG - 1);
        return -1;
    }
    *idx = (int)i;
    return 0;
}

static int sy_u32(PyObject *arg, uint32_t *out)
{
    if (!PyLong_Check(arg)) {
        PyErr_Format(PyExc_TypeError, "an int is required, not %.100s", Py_TYPE(arg)->tp_name);
        return -1;
    }
    unsigned long v = PyLong_AsUnsignedLongMask(arg);
    if (v == (unsigned long)-1 && PyErr_Occurred())
        return -1;
    *out = (uint32_t)v;
    return 0;
}

/* The model's calls that may call back into Python keep the object alive across them. */
#define SY_CALL(o, expr)                         \
    do {                                         \
        if (!sy_bound(o))                        \
            return NULL;                         \
        Py_INCREF(o);                            \
        int sy_rc_ = (expr);                     \
        Py_DECREF(o);                            \
        if (sy_rc_ < 0)                          \
            return NULL;                         \
    } while (0)

static PyObject *sy_read_reg(SysTickObject *o, PyObject *arg)
{
    int idx;
    uint32_t v;
    if (sy_idx(arg, &idx) < 0)
        return NULL;
    SY_CALL(o, dh_systick_read_reg(&o->s, idx, &v));
    return PyLong_FromUnsignedLong(v);
}

static PyObject *sy_write_reg(SysTickObject *o, PyObject *const *args, Py_ssize_t nargs)
{
    int idx;
    uint32_t data, mask;
    if (nargs != 3)
        return PyErr_Format(PyExc_TypeError, "write_reg(index, data, byte_mask)");
    if (sy_idx(args[0], &idx) < 0 || sy_u32(args[1], &data) < 0 || sy_u32(args[2], &mask) < 0)
        return NULL;
    SY_CALL(o, dh_systick_write_reg(&o->s, idx, data, mask));
    Py_RETURN_NONE;
}

static PyObject *sy_get_reg(SysTickObject *o, PyObject *arg)
{
    int idx;
    if (sy_idx(arg, &idx) < 0)
        return NULL;
    return PyLong_FromUnsignedLong(o->s.reg[idx]);
}

/* set_reg(index, value): the raw word, no side effect (Register.value = v, Register.set) */
static PyObject *sy_set_reg(SysTickObject *o, PyObject *const *args, Py_ssize_t nargs)
{
    int idx;
    uint32_t v;
    if (nargs != 2)
        return PyErr_Format(PyExc_TypeError, "set_reg(index, value)");
    if (sy_idx(args[0], &idx) < 0 || sy_u32(args[1], &v) < 0)
        return NULL;
    o->s.reg[idx] = v;
    Py_RETURN_NONE;
}

static PyObject *sy_read(SysTickObject *o, PyObject *const *args, Py_ssize_t nargs)
{
    uint32_t off, size = 4;
    uint64_t v;
    if (nargs < 1 || nargs > 2)
        return PyErr_Format(PyExc_TypeError, "read(offset, size=4)");
    if (sy_u32(args[0], &off) < 0 || (nargs == 2 && sy_u32(args[1], &size) < 0))
        return NULL;
    if (syp_read(o, off, size, &v) < 0)
        return NULL;
    return PyLong_FromUnsignedLongLong(v);
}

static PyObject *sy_write(SysTickObject *o, PyObject *const *args, Py_ssize_t nargs)
{
    uint32_t off, size;
    if (nargs != 3)
        return PyErr_Format(PyExc_TypeError, "write(offset, size, value)");
    if (sy_u32(args[0], &off) < 0 || sy_u32(args[1], &size) < 0)
        return NULL;
    uint64_t v = PyLong_AsUnsignedLongLongMask(args[2]);
    if (v == (uint64_t)-1 && PyErr_Occurred())
        return NULL;
    if (syp_write(o, off, size, v) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *sy_wrap(SysTickObject *o, PyObject *Py_UNUSED(ignored))
{
    SY_CALL(o, dh_systick_wrap(&o->s));
    Py_RETURN_NONE;
}

static PyObject *sy_resume(SysTickObject *o, PyObject *Py_UNUSED(ignored))
{
    SY_CALL(o, dh_systick_resume(&o->s));
    Py_RETURN_NONE;
}

static PyObject *sy_reset(SysTickObject *o, PyObject *Py_UNUSED(ignored))
{
    SY_CALL(o, dh_systick_reset(&o->s));
    Py_RETURN_NONE;
}

static PyObject *sy_set_core_clock(SysTickObject *o, PyObject *arg)
{
    int64_t hz;
    if (as_i64(arg, &hz) < 0)
        return NULL;
    SY_CALL(o, dh_systick_set_core_clock(&o->s, hz));
    Py_RETURN_NONE;
}

static PyObject *sy_hz(SysTickObject *o, PyObject *Py_UNUSED(ignored))
{
    int64_t hz;
    SY_CALL(o, dh_systick_hz(&o->s, &hz));
    return PyLong_FromLongLong(hz);
}
#undef SY_CALL

enum { SY_RUNNING, SY_ZERO, SY_VAL, SY_COUNTFLAG, SY_CORE_HZ, SY_HZ_CACHE, SY_HZ_CSR, SY_EVENT };

static PyObject *sy_get(SysTickObject *o, void *which)
{
    dh_systick *s = &o->s;
    switch ((int)(intptr_t)which) {
    case SY_RUNNING:
        return PyBool_FromLong(s->running);
    case SY_ZERO:
        return i128_long(s->zero);
    case SY_VAL:
        return i128_long(s->val);
    case SY_COUNTFLAG:
        return PyBool_FromLong(s->countflag);
    case SY_CORE_HZ:
        if (!s->core_hz)
            Py_RETURN_NONE;
        return PyLong_FromLongLong(s->core_hz);
    case SY_HZ_CACHE:
        if (!s->hz_cached)
            Py_RETURN_NONE;
        return PyLong_FromLongLong(s->hz_cache);
    case SY_HZ_CSR:
        return PyLong_FromUnsignedLong(s->hz_csr);
    default:
        return Py_NewRef(o->ev ? o->ev : Py_None);
    }
}

static PyObject *sy_get_mmio(SysTickObject *o, void *Py_UNUSED(c))
{
    return PyCapsule_New(&o->mmio_port, DH_MMIO_CAPSULE, NULL);   /* holds no reference to o */
}

static PyGetSetDef sy_getset[] = {
    {"running", (getter)sy_get, NULL, "_st_running: the counter runs", (void *)SY_RUNNING},
    {"zero", (getter)sy_get, NULL, "_st_zero: SysTick-clock tick of the next wrap", (void *)SY_ZERO},
    {"val", (getter)sy_get, NULL, "_st_val: the value while stopped", (void *)SY_VAL},
    {"countflag", (getter)sy_get, NULL, "_countflag: a wrap since CSR was last read", (void *)SY_COUNTFLAG},
    {"core_hz", (getter)sy_get, NULL, "_st_core_hz: the core clock pushed, or None", (void *)SY_CORE_HZ},
    {"hz_cache", (getter)sy_get, NULL, "_st_hz_cache, or None", (void *)SY_HZ_CACHE},
    {"hz_csr", (getter)sy_get, NULL, "_st_hz_csr: the CLKSOURCE bit of the cache", (void *)SY_HZ_CSR},
    {"event", (getter)sy_get, NULL, "_st_event: the wrap event held, or None", (void *)SY_EVENT},
    {"_native_mmio", (getter)sy_get_mmio, NULL, "ports.h: the SCS page (SysTick in C)", NULL},
    {NULL},
};

static PyMethodDef sy_methods[] = {
    {"_bind", (PyCFunction)(void (*)(void))sy_bind, METH_FASTCALL,
     "_bind(owner, machine, name, base, systick_frequency)"},
    {"set_fallback", (PyCFunction)(void (*)(void))sy_set_fallback, METH_FASTCALL,
     "set_fallback(read, write): the SCS bank's read/write, for the registers that are not SysTick's"},
    {"read_reg", (PyCFunction)sy_read_reg, METH_O, "read_reg(index) -> the bus read of CSR/RVR/CVR/CALIB"},
    {"write_reg", (PyCFunction)(void (*)(void))sy_write_reg, METH_FASTCALL,
     "write_reg(index, data, byte_mask): the bus write of CSR/RVR/CVR/CALIB"},
    {"get_reg", (PyCFunction)sy_get_reg, METH_O, "get_reg(index) -> the raw word"},
    {"set_reg", (PyCFunction)(void (*)(void))sy_set_reg, METH_FASTCALL, "set_reg(index, value): raw"},
    {"read", (PyCFunction)(void (*)(void))sy_read, METH_FASTCALL,
     "read(offset, size=4) -> the SCS page as the C bus reads it"},
    {"write", (PyCFunction)(void (*)(void))sy_write, METH_FASTCALL,
     "write(offset, size, value): the SCS page as the C bus writes it"},
    {"_st_wrap", (PyCFunction)sy_wrap, METH_NOARGS, "event: the counter wrapped (nvic.py's _st_wrap)"},
    {"resume", (PyCFunction)sy_resume, METH_NOARGS, "_st_resume: SysTick unpended after coalesced wraps"},
    {"reset", (PyCFunction)sy_reset, METH_NOARGS, "reset(): registers and counter; the event cancelled"},
    {"set_core_clock", (PyCFunction)sy_set_core_clock, METH_O, "set_core_clock(hz)"},
    {"hz", (PyCFunction)sy_hz, METH_NOARGS, "_st_hz(): the SysTick rate for the present CLKSOURCE"},
    {NULL},
};

static PyTypeObject SysTickType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "duohil.engines.builtin.native._core.SysTick",
    .tp_basicsize = sizeof(SysTickObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "SysTick(nvic): the Cortex-M7 SysTick in C (native/systick.c), nvic.py's Nvic's.",
    .tp_new = sy_new,
    .tp_dealloc = (destructor)sy_dealloc,
    .tp_traverse = (traverseproc)sy_traverse,
    .tp_clear = (inquiry)sy_clear,
    .tp_methods = sy_methods,
    .tp_getset = sy_getset,
};

static int add_systick_type(PyObject *m)
{
    if (!(st_s_kick = PyUnicode_InternFromString("kick"))
        || !(st_s_poll_hint = PyUnicode_InternFromString("poll_hint"))
        || !(st_s_cancel = PyUnicode_InternFromString("cancel"))
        || !(st_s_wrap = PyUnicode_InternFromString("_st_wrap")))
        return -1;
    if (PyType_Ready(&SysTickType) < 0)
        return -1;
    Py_INCREF(&SysTickType);
    if (PyModule_AddObject(m, "SysTick", (PyObject *)&SysTickType) < 0) {
        Py_DECREF(&SysTickType);
        return -1;
    }
    return 0;
}

/* == end of SysTick [systickc] ===================================================================== */

/* == Plant: the DC-motor plant (plant.c) [plantc] ================================================
 * board/plant.py's DcMotorPlantNative (every DcMotorPlant) is a subclass of _core.Plant: the
 * state (t, x, v, the drive, pinned, the end-stop event or its deferred prediction, the history
 * and the trace) lives only here; the arithmetic is plant.c's. The common paths make no Python
 * call: the drive change (the timer listener _on_pwm and the GPIO subscription _pin_changed are
 * bound C methods; the duty is read from a _core.Timer's C state, the direction level from the
 * port's `_levels` word), advance with no crossing due, the periodic sample (an event on the C
 * heap whose callable is this object's _sample; history, trace, the encoder timer's
 * set_encoder_count in C), count_now (the encoder timer's encoder_source) and the deferred
 * end-stop prediction (reserve_seq/defer straight on the C scheduler, its callable
 * _materialize_cross). What stays Python, called from here: the crossing search
 * (_first_crossing_from and its bisection, rare: at most once per drive change that cannot be
 * deferred or is materialised) and machine.record of an end stop. A crossing that cannot come
 * before 2**63 ps is not predicted (no event, no deferred prediction). Specified by
 * tests/test_plant.py and tests/test_native_plant.py. Uses as_i64, machine_now, c_at, event_new, push_event, sched_defer,
 * sched_cancel_deferred, EventType, SchedType, TimerType and tm_bound from the sections above. */

#include "plant.h"

static PyObject *pl_s_first_crossing_from, *pl_s_record, *pl_s_end_stop, *pl_s_kw_record,
    *pl_s_side[3], *pl_s_t_ps, *pl_s_position, *pl_s_velocity, *pl_s_name_sample,
    *pl_s_name_end_stop, *pl_s_channel_duty, *pl_s_pin_level, *pl_s_levels,
    *pl_s_set_encoder_count, *pl_s_reserve_seq, *pl_s_defer, *pl_s_cancel_deferred, *pl_s_at_seq,
    *pl_s_cancel, *pl_s_time, *pl_s_now, *pl_s_kw_name, *pl_empty;

typedef struct {
    PyObject_HEAD
    dh_plant pl;
    dh_trace trace;
    dh_history hist;
    int64_t period;                   /* sample_period_ps */
    PyObject *machine, *sched, *pwm, *direction, *encoder;     /* encoder NULL: None */
    PyObject *pwm_ch, *dir_pin, *dpl;  /* pwm_channel, direction_pin, direction_positive_level */
    int pwm_fast;                     /* 1..4: the pwm is a _core.Timer, that channel's duty read in
                                         C; 0: pwm.channel_duty(pwm_channel) */
    int enc_fast;                     /* the encoder is a _core.Timer: set_encoder_count in C */
    int dir_fast;                     /* 0..62: the port's `_levels` word read here, else -1 */
    PyObject *lim[3];                 /* the limit objects (plant.py's x after a clamp) */
    PyObject *end_stops;              /* list of dicts */
    PyObject *cross_ev, *sample_ev;   /* held events, or NULL */
    PyObject *fn_sample, *fn_on_cross, *fn_materialize;     /* bound methods of self */
    /* the deferred prediction (plant.py's _lazy_cross): t_lb, seq, state, the scheduler's handle */
    int lazy;
    int64_t lazy_tlb, lazy_seq, lazy_t0, lazy_floor;
    double lazy_x0, lazy_v0, lazy_vt;
    int lazy_x0_lim;
    PyObject *lazy_handle;
} PlantObject;

static PyTypeObject PlantType;

static int pl_bound(PlantObject *o)
{
    if (o->machine)
        return 1;
    PyErr_SetString(PyExc_RuntimeError, "Plant used before _bind(...) or after it was cleared");
    return 0;
}

/* what the scheduler's as_i64 says of a time beyond int64 */
static int pl_time_overflow(void)
{
    PyErr_SetString(PyExc_OverflowError,
                    "time or sequence number beyond 2**63-1 ps (106 days of virtual time)");
    return -1;
}

/* plant.py's x as Python holds it: the limit object after a clamp to it, else a float */
static PyObject *pl_xobj(PlantObject *o, double x, int x_lim)
{
    if (x_lim)
        return Py_NewRef(o->lim[x_lim]);
    return PyFloat_FromDouble(x);
}

/* math.floor(x) */
static int pl_floor(double x, int64_t *out)
{
    if (isnan(x)) {
        PyErr_SetString(PyExc_ValueError, "cannot convert float NaN to integer");
        return -1;
    }
    if (isinf(x)) {
        PyErr_SetString(PyExc_OverflowError, "cannot convert float infinity to integer");
        return -1;
    }
    if (!(x >= -0x1p63 && x < 0x1p63)) {
        PyErr_SetString(PyExc_OverflowError, "plant: position beyond 64-bit counts");
        return -1;
    }
    *out = dh_plant_floor(x);
    return 0;
}

/* -- the scheduler, as plant.py calls it ---------------------------------------------------------- */

static int pl_cancel_ev(PyObject *ev)
{
    if (PyObject_TypeCheck(ev, &EventType)) {
        ((EventObject *)ev)->cancelled = 1;
        return 0;
    }
    PyObject *r = PyObject_CallMethodNoArgs(ev, pl_s_cancel);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

static int pl_ev_time(PyObject *ev, int64_t *t)
{
    if (PyObject_TypeCheck(ev, &EventType)) {
        *t = ((EventObject *)ev)->time;
        return 0;
    }
    PyObject *tt = PyObject_GetAttr(ev, pl_s_time);
    if (!tt)
        return -1;
    int rc = as_i64(tt, t);
    Py_DECREF(tt);
    return rc;
}

/* scheduler.at(t, fn, name=name) */
static PyObject *pl_at(PlantObject *o, int64_t t, PyObject *fn, PyObject *name)
{
    return c_at(o->sched, t, fn, pl_empty, name);
}

/* scheduler.at_seq(t, seq, fn, name=name) */
static PyObject *pl_at_seq(PlantObject *o, int64_t t, int64_t seq, PyObject *fn, PyObject *name)
{
    if (PyObject_TypeCheck(o->sched, &SchedType)) {
        EventObject *ev = event_new(t, seq, fn, pl_empty, name);
        if (!ev)
            return NULL;
        if (push_event((SchedObject *)o->sched, ev) < 0) {
            Py_DECREF(ev);
            return NULL;
        }
        return (PyObject *)ev;
    }
    PyObject *tt = PyLong_FromLongLong(t), *ss = PyLong_FromLongLong(seq), *r = NULL;
    if (tt && ss) {
        PyObject *args[5] = {o->sched, tt, ss, fn, name};
        r = PyObject_VectorcallMethod(pl_s_at_seq, args, 4 | PY_VECTORCALL_ARGUMENTS_OFFSET,
                                      pl_s_kw_name);
    }
    Py_XDECREF(tt);
    Py_XDECREF(ss);
    return r;
}

static int pl_reserve_seq(PlantObject *o, int64_t *seq)
{
    if (PyObject_TypeCheck(o->sched, &SchedType)) {
        *seq = ++((SchedObject *)o->sched)->seq;
        return 0;
    }
    PyObject *r = PyObject_CallMethodNoArgs(o->sched, pl_s_reserve_seq);
    if (!r)
        return -1;
    int rc = as_i64(r, seq);
    Py_DECREF(r);
    return rc;
}

static int pl_sched_now(PlantObject *o, int64_t *now)
{
    if (PyObject_TypeCheck(o->sched, &SchedType)) {
        *now = ((SchedObject *)o->sched)->now;
        return 0;
    }
    PyObject *r = PyObject_GetAttr(o->sched, pl_s_now);
    if (!r)
        return -1;
    int rc = as_i64(r, now);
    Py_DECREF(r);
    return rc;
}

/* scheduler.defer(t_lb, fn) -> the handle */
static PyObject *pl_defer(PlantObject *o, int64_t t_lb, PyObject *fn)
{
    PyObject *tt = PyLong_FromLongLong(t_lb);
    if (!tt)
        return NULL;
    PyObject *r;
    if (PyObject_TypeCheck(o->sched, &SchedType)) {
        PyObject *args[2] = {tt, fn};
        r = sched_defer((SchedObject *)o->sched, args, 2);
    } else {
        PyObject *args[3] = {o->sched, tt, fn};
        r = PyObject_VectorcallMethod(pl_s_defer, args, 3 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    }
    Py_DECREF(tt);
    return r;
}

static int pl_cancel_deferred(PlantObject *o, PyObject *handle)
{
    PyObject *r;
    if (PyObject_TypeCheck(o->sched, &SchedType))
        r = sched_cancel_deferred((SchedObject *)o->sched, handle);
    else
        r = PyObject_CallMethodOneArg(o->sched, pl_s_cancel_deferred, handle);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

/* -- the plant, plant.py's methods in its order ----------------------------------------------------- */

static int pl_predict(PlantObject *o);

/* self._first_crossing_from(x0, v0, vt): *found 0 (None) or 1 with *dt and *side */
static int pl_first_crossing(PlantObject *o, double x0, int x0_lim, double v0, double vt, int *found,
                             int64_t *dt, int *side)
{
    PyObject *xo = pl_xobj(o, x0, x0_lim);
    PyObject *vo = xo ? PyFloat_FromDouble(v0) : NULL;
    PyObject *to = vo ? PyFloat_FromDouble(vt) : NULL;
    PyObject *r = NULL;
    if (to) {
        PyObject *args[4] = {(PyObject *)o, xo, vo, to};
        r = PyObject_VectorcallMethod(pl_s_first_crossing_from, args,
                                      4 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    }
    Py_XDECREF(xo);
    Py_XDECREF(vo);
    Py_XDECREF(to);
    if (!r)
        return -1;
    *found = 0;
    int rc = 0;
    if (r != Py_None) {
        int beyond = 0;
        if (!PyTuple_Check(r) || PyTuple_GET_SIZE(r) != 2 || !PyLong_Check(PyTuple_GET_ITEM(r, 0))) {
            PyErr_SetString(PyExc_TypeError, "_first_crossing_from must return None or (dt, side)");
            rc = -1;
        } else if ((*dt = PyLong_AsLongLongAndOverflow(PyTuple_GET_ITEM(r, 0), &beyond)) == -1
                   && PyErr_Occurred()) {
            rc = -1;
        } else if (beyond) {
            /* a crossing beyond 2**63 ps: never within virtual time, no event */
        } else {
            int mx = PyObject_RichCompareBool(PyTuple_GET_ITEM(r, 1), pl_s_side[DH_PLANT_MAX], Py_EQ);
            if (mx < 0)
                rc = -1;
            *side = mx > 0 ? DH_PLANT_MAX : DH_PLANT_MIN;
            *found = 1;
        }
    }
    Py_DECREF(r);
    return rc;
}

/* _drop_lazy_cross */
static int pl_drop_lazy(PlantObject *o)
{
    if (!o->lazy)
        return 0;
    o->lazy = 0;
    PyObject *h = o->lazy_handle;
    o->lazy_handle = NULL;
    int rc = h ? pl_cancel_deferred(o, h) : 0;
    Py_XDECREF(h);
    return rc;
}

/* _materialize_cross: the deferred prediction computed from the state it was made in, its event
 * pushed with the sequence number reserved then */
static int pl_materialize(PlantObject *o)
{
    if (!o->lazy)
        return 0;
    o->lazy = 0;
    PyObject *h = o->lazy_handle;
    o->lazy_handle = NULL;
    if (h) {
        int rc = pl_cancel_deferred(o, h);
        Py_DECREF(h);
        if (rc < 0)
            return -1;
    }
    int found, side;
    int64_t dt;
    if (pl_first_crossing(o, o->lazy_x0, o->lazy_x0_lim, o->lazy_v0, o->lazy_vt, &found, &dt, &side) < 0)
        return -1;
    if (!found)
        return 0;
    int64_t t;
    if (__builtin_add_overflow(o->lazy_t0, dt, &t))
        return 0;                                  /* beyond 2**63 ps: no event */
    PyObject *ev = pl_at_seq(o, t > o->lazy_floor ? t : o->lazy_floor, o->lazy_seq, o->fn_on_cross,
                             pl_s_name_end_stop);
    if (!ev)
        return -1;
    Py_XSETREF(o->cross_ev, ev);
    return 0;
}

/* _hit(t): the axis reaches a stop at t */
static int pl_hit(PlantObject *o, int64_t t)
{
    dh_plant *pl = &o->pl;
    PyObject *ev = o->cross_ev;
    o->cross_ev = NULL;
    if (ev) {
        int rc = pl_cancel_ev(ev);
        Py_DECREF(ev);
        if (rc < 0)
            return -1;
    }
    if (pl_drop_lazy(o) < 0)
        return -1;
    double x, v;
    dh_plant_state_after(pl, t - pl->t, &x, &v);
    int side = dh_plant_hit_side(&pl->p, x, v);
    pl->x = pl->p.lim[side];                       /* float(limit) */
    pl->x_lim = DH_PLANT_FREE;
    pl->v = 0.0;
    pl->t = t;
    pl->pinned = side;
    PyObject *tt = PyLong_FromLongLong(t), *vo = PyFloat_FromDouble(v), *d = NULL;
    if (tt && vo && (d = PyDict_New())
        && (PyDict_SetItem(d, pl_s_t_ps, tt) < 0 || PyDict_SetItem(d, pl_s_side[0], pl_s_side[side]) < 0
            || PyDict_SetItem(d, pl_s_position, o->lim[side]) < 0
            || PyDict_SetItem(d, pl_s_velocity, vo) < 0 || PyList_Append(o->end_stops, d) < 0))
        Py_CLEAR(d);
    PyObject *r = NULL;
    if (d) {                                       /* machine.record("end_stop", t=t, **rec) */
        PyObject *args[6] = {o->machine, pl_s_end_stop, tt, pl_s_side[side], o->lim[side], vo};
        r = PyObject_VectorcallMethod(pl_s_record, args, 2 | PY_VECTORCALL_ARGUMENTS_OFFSET,
                                      pl_s_kw_record);
    }
    Py_XDECREF(tt);
    Py_XDECREF(vo);
    Py_XDECREF(d);
    if (!r)
        return -1;
    Py_DECREF(r);
    dh_plant_release_if_pulled_away(pl);
    return pl_predict(o);
}

/* advance(t): the state brought to t (never backwards) */
static int pl_advance(PlantObject *o, int64_t t)
{
    dh_plant *pl = &o->pl;
    while (t > pl->t) {
        if (pl->pinned) {
            pl->t = t;
            return 0;
        }
        if (o->lazy && t >= o->lazy_tlb && pl_materialize(o) < 0)
            return -1;
        if (o->cross_ev) {
            int64_t cross;
            if (pl_ev_time(o->cross_ev, &cross) < 0)
                return -1;
            if (cross <= t) {
                if (pl_hit(o, cross) < 0)
                    return -1;
                continue;
            }
        }
        double x, v;
        dh_plant_state_after(pl, t - pl->t, &x, &v);
        pl->x_lim = dh_plant_clamp(&pl->p, &x);
        pl->x = x;
        pl->v = v;
        pl->t = t;
    }
    return 0;
}

static int pl_advance_now(PlantObject *o)
{
    int64_t now;
    if (!pl_bound(o) || machine_now(o->machine, &now) < 0)
        return -1;
    return pl_advance(o, now);
}

/* _predict: the next end-stop crossing under the drive in effect, eager or deferred */
static int pl_predict(PlantObject *o)
{
    dh_plant *pl = &o->pl;
    PyObject *ev = o->cross_ev;
    if (ev) {
        o->cross_ev = NULL;
        int rc = pl_cancel_ev(ev);
        Py_DECREF(ev);
        if (rc < 0)
            return -1;
    }
    if (pl_drop_lazy(o) < 0)
        return -1;
    if (pl->pinned)
        return 0;
    int64_t lb = 0, t_lb = 0;
    int b = dh_plant_crossing_lower_bound(pl, &lb);
    if (b < 0 || (b == 1 && __builtin_add_overflow(pl->t, lb, &t_lb)))
        return 0;      /* no stop can be reached before 2**63 ps (a crawling axis): no prediction */
    if (b != 0) {
        /* deferred: a crossing this far ahead is almost always overtaken by the next drive change */
        int64_t seq, floor_t;
        if (pl_reserve_seq(o, &seq) < 0)
            return -1;
        if (pl_sched_now(o, &floor_t) < 0)
            return -1;
        PyObject *h = pl_defer(o, t_lb, o->fn_materialize);
        if (!h)
            return -1;
        o->lazy = 1;
        o->lazy_tlb = t_lb;
        o->lazy_seq = seq;
        o->lazy_t0 = pl->t;
        o->lazy_x0 = pl->x;
        o->lazy_x0_lim = pl->x_lim;
        o->lazy_v0 = pl->v;
        o->lazy_vt = pl->vt;
        o->lazy_floor = floor_t;
        o->lazy_handle = h;
        return 0;
    }
    int found, side;
    int64_t dt, t;
    if (pl_first_crossing(o, pl->x, pl->x_lim, pl->v, pl->vt, &found, &dt, &side) < 0)
        return -1;
    if (!found)
        return 0;
    if (dt == 0 && pl->v == 0) {
        /* resting against that stop already (released and pushed back at the same instant) */
        pl->pinned = side;
        return 0;
    }
    if (__builtin_add_overflow(pl->t, dt, &t))
        return 0;                                  /* beyond 2**63 ps: no event */
    ev = pl_at(o, t, o->fn_on_cross, pl_s_name_end_stop);
    if (!ev)
        return -1;
    Py_XSETREF(o->cross_ev, ev);
    return 0;
}

/* _read_drive: (sign * duty, sign * max_speed * effective) */
static int pl_read_drive(PlantObject *o, double *drive, double *vt)
{
    double duty;
    if (o->pwm_fast) {
        duty = dh_tim_channel_duty(&((TimerObject *)o->pwm)->t, o->pwm_fast);
    } else {
        PyObject *args[2] = {o->pwm, o->pwm_ch};
        PyObject *r = PyObject_VectorcallMethod(pl_s_channel_duty, args,
                                                2 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
        if (!r)
            return -1;
        duty = PyFloat_AsDouble(r);
        Py_DECREF(r);
        if (duty == -1.0 && PyErr_Occurred())
            return -1;
    }
    PyObject *level;
    if (o->dir_fast >= 0) {                        /* STM32_GPIOPort.pin_level */
        PyObject *w = PyObject_GetAttr(o->direction, pl_s_levels);
        if (!w)
            return -1;
        int64_t bits;
        int rc = as_i64(w, &bits);
        Py_DECREF(w);
        if (rc < 0)
            return -1;
        level = PyLong_FromLongLong((bits >> o->dir_fast) & 1);
    } else {
        PyObject *args[2] = {o->direction, o->dir_pin};
        level = PyObject_VectorcallMethod(pl_s_pin_level, args, 2 | PY_VECTORCALL_ARGUMENTS_OFFSET,
                                          NULL);
    }
    if (!level)
        return -1;
    int positive = PyObject_RichCompareBool(level, o->dpl, Py_EQ);
    Py_DECREF(level);
    if (positive < 0)
        return -1;
    dh_plant_drive_of(&o->pl.p, duty, positive, drive, vt);
    return 0;
}

/* _drive_changed(force) */
static int pl_drive_changed(PlantObject *o, int force)
{
    if (pl_advance_now(o) < 0)
        return -1;
    double drive, vt;
    if (pl_read_drive(o, &drive, &vt) < 0)
        return -1;
    dh_plant *pl = &o->pl;
    if (!force && vt == pl->vt && drive == pl->drive)
        return 0;
    pl->drive = drive;
    pl->vt = vt;
    dh_plant_release_if_pulled_away(pl);
    return pl_predict(o);
}

static int pl_set_encoder(PlantObject *o, int64_t count)
{
    if (o->enc_fast) {
        TimerObject *tm = (TimerObject *)o->encoder;
        if (!tm_bound(tm))
            return -1;
        return dh_tim_set_encoder_count(&tm->t, (dh_tim_i128)count);
    }
    PyObject *c = PyLong_FromLongLong(count);
    if (!c)
        return -1;
    PyObject *r = PyObject_CallMethodOneArg(o->encoder, pl_s_set_encoder_count, c);
    Py_DECREF(c);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

/* _sample: the periodic evaluation (history, trace, encoder) and the next one scheduled */
static int pl_sample(PlantObject *o)
{
    int64_t now, next;
    if (!pl_bound(o) || machine_now(o->machine, &now) < 0 || pl_advance(o, now) < 0)
        return -1;
    dh_plant *pl = &o->pl;
    dh_sample s = {now, pl->x, pl->v, pl->drive, pl->x_lim};
    if (dh_history_append(&o->hist, &s) < 0 || dh_trace_append(&o->trace, now, pl->x) < 0) {
        PyErr_NoMemory();
        return -1;
    }
    if (o->encoder) {
        int64_t count;
        if (pl_floor(pl->x, &count) < 0 || pl_set_encoder(o, count) < 0)
            return -1;
    }
    if (__builtin_add_overflow(now, o->period, &next))
        return pl_time_overflow();
    PyObject *ev = pl_at(o, next, o->fn_sample, pl_s_name_sample);
    if (!ev)
        return -1;
    Py_XSETREF(o->sample_ev, ev);
    return 0;
}

/* -- the Python face --------------------------------------------------------------------------------- */

static PyObject *pl_new(PyTypeObject *type, PyObject *Py_UNUSED(args), PyObject *Py_UNUSED(kw))
{
    PlantObject *o = (PlantObject *)type->tp_alloc(type, 0);
    if (!o)
        return NULL;
    o->dir_fast = -1;
    dh_trace_init(&o->trace, 2);
    dh_history_init(&o->hist, 1);
    return (PyObject *)o;
}

static int pl_traverse(PlantObject *o, visitproc visit, void *arg)
{
    Py_VISIT(o->machine);
    Py_VISIT(o->sched);
    Py_VISIT(o->pwm);
    Py_VISIT(o->direction);
    Py_VISIT(o->encoder);
    Py_VISIT(o->pwm_ch);
    Py_VISIT(o->dir_pin);
    Py_VISIT(o->dpl);
    Py_VISIT(o->lim[1]);
    Py_VISIT(o->lim[2]);
    Py_VISIT(o->end_stops);
    Py_VISIT(o->cross_ev);
    Py_VISIT(o->sample_ev);
    Py_VISIT(o->fn_sample);
    Py_VISIT(o->fn_on_cross);
    Py_VISIT(o->fn_materialize);
    Py_VISIT(o->lazy_handle);
    return 0;          /* a heap subclass's type and __dict__ are visited by subtype_traverse */
}

static int pl_clear(PlantObject *o)
{
    Py_CLEAR(o->machine);
    Py_CLEAR(o->sched);
    Py_CLEAR(o->pwm);
    Py_CLEAR(o->direction);
    Py_CLEAR(o->encoder);
    Py_CLEAR(o->pwm_ch);
    Py_CLEAR(o->dir_pin);
    Py_CLEAR(o->dpl);
    Py_CLEAR(o->lim[1]);
    Py_CLEAR(o->lim[2]);
    Py_CLEAR(o->end_stops);
    Py_CLEAR(o->cross_ev);
    Py_CLEAR(o->sample_ev);
    Py_CLEAR(o->fn_sample);
    Py_CLEAR(o->fn_on_cross);
    Py_CLEAR(o->fn_materialize);
    Py_CLEAR(o->lazy_handle);
    o->lazy = 0;
    o->pwm_fast = o->enc_fast = 0;
    o->dir_fast = -1;
    return 0;
}

static void pl_dealloc(PlantObject *o)
{
    PyObject_GC_UnTrack(o);
    pl_clear(o);
    dh_trace_free(&o->trace);
    dh_history_free(&o->hist);
    Py_TYPE(o)->tp_free((PyObject *)o);
}

static int pl_param_double(PyObject *params, const char *name, double *out)
{
    PyObject *v = PyObject_GetAttrString(params, name);
    if (!v)
        return -1;
    *out = PyFloat_AsDouble(v);
    Py_DECREF(v);
    return *out == -1.0 && PyErr_Occurred() ? -1 : 0;
}

/* _bind(machine, params, pwm, pwm_channel, direction, direction_pin, encoder, pwm_fast, enc_fast,
 *       dir_fast): plant.py's __init__ up to the wiring (the Python face wires, then calls
 *       _drive_changed(True) and _start()). plant.py's MotorParams checked the parameters. */
static PyObject *pl_bind(PlantObject *o, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 10)
        return PyErr_Format(PyExc_TypeError, "_bind(machine, params, pwm, pwm_channel, direction, "
                            "direction_pin, encoder, pwm_fast, enc_fast, dir_fast)");
    PyObject *machine = args[0], *params = args[1];
    dh_plant_params p;
    double x0;
    int64_t period, hlen, now, dir_fast;
    int pwm_fast = PyObject_IsTrue(args[7]), enc_fast = PyObject_IsTrue(args[8]);
    if (pwm_fast < 0 || enc_fast < 0 || as_i64(args[9], &dir_fast) < 0)
        return NULL;
    if (pl_param_double(params, "max_speed", &p.max_speed) < 0
        || pl_param_double(params, "tau_s", &p.tau) < 0
        || pl_param_double(params, "friction_duty", &p.friction) < 0
        || pl_param_double(params, "limit_min", &p.lim[DH_PLANT_MIN]) < 0
        || pl_param_double(params, "limit_max", &p.lim[DH_PLANT_MAX]) < 0
        || pl_param_double(params, "initial_position", &x0) < 0)
        return NULL;
    p.lim[0] = 0.0;
    PyObject *v;
    if (!(v = PyObject_GetAttrString(params, "sample_period_ps")))
        return NULL;
    int rc = as_i64(v, &period);
    Py_DECREF(v);
    if (rc < 0 || !(v = PyObject_GetAttrString(params, "history_len")))
        return NULL;
    rc = as_i64(v, &hlen);
    Py_DECREF(v);
    if (rc < 0)
        return NULL;
    PyObject *lmin = PyObject_GetAttrString(params, "limit_min");
    PyObject *lmax = lmin ? PyObject_GetAttrString(params, "limit_max") : NULL;
    PyObject *dpl = lmax ? PyObject_GetAttrString(params, "direction_positive_level") : NULL;
    PyObject *sched = dpl ? PyObject_GetAttrString(machine, "scheduler") : NULL;
    PyObject *stops = sched ? PyList_New(0) : NULL;
    PyObject *fs = stops ? PyObject_GetAttrString((PyObject *)o, "_sample") : NULL;
    PyObject *fc = fs ? PyObject_GetAttrString((PyObject *)o, "_on_cross") : NULL;
    PyObject *fm = fc ? PyObject_GetAttrString((PyObject *)o, "_materialize_cross") : NULL;
    if (!fm || machine_now(machine, &now) < 0) {
        Py_XDECREF(lmin);
        Py_XDECREF(lmax);
        Py_XDECREF(dpl);
        Py_XDECREF(sched);
        Py_XDECREF(stops);
        Py_XDECREF(fs);
        Py_XDECREF(fc);
        Py_XDECREF(fm);
        return NULL;
    }
    pl_clear(o);
    o->machine = Py_NewRef(machine);
    o->sched = sched;
    o->pwm = Py_NewRef(args[2]);
    o->pwm_ch = Py_NewRef(args[3]);
    o->direction = Py_NewRef(args[4]);
    o->dir_pin = Py_NewRef(args[5]);
    o->encoder = args[6] == Py_None ? NULL : Py_NewRef(args[6]);
    o->dpl = dpl;
    o->lim[DH_PLANT_MIN] = lmin;
    o->lim[DH_PLANT_MAX] = lmax;
    o->end_stops = stops;
    o->fn_sample = fs;
    o->fn_on_cross = fc;
    o->fn_materialize = fm;
    /* the fast paths only where the C state is what the Python method would read */
    long ch = PyLong_Check(args[3]) ? PyLong_AsLong(args[3]) : 0;
    PyErr_Clear();
    o->pwm_fast = pwm_fast && PyObject_TypeCheck(args[2], &TimerType) && ch >= 1 && ch <= 4 ? (int)ch : 0;
    o->enc_fast = enc_fast && o->encoder && PyObject_TypeCheck(o->encoder, &TimerType);
    o->dir_fast = dir_fast >= 0 && dir_fast < 63 ? (int)dir_fast : -1;
    o->period = period;
    memset(&o->pl, 0, sizeof o->pl);
    o->pl.p = p;
    o->pl.t = now;
    o->pl.x = x0;
    dh_trace_free(&o->trace);
    dh_trace_init(&o->trace, 12000);               /* plant.py's TRACE_POINTS */
    dh_history_free(&o->hist);
    dh_history_init(&o->hist, (size_t)(hlen > 0 ? hlen : 1));
    Py_RETURN_NONE;
}

/* _start(): the first sample event, sample_period_ps after the state */
static PyObject *pl_start(PlantObject *o, PyObject *Py_UNUSED(ignored))
{
    int64_t t;
    if (!pl_bound(o))
        return NULL;
    if (__builtin_add_overflow(o->pl.t, o->period, &t))
        return pl_time_overflow(), NULL;
    PyObject *ev = pl_at(o, t, o->fn_sample, pl_s_name_sample);
    if (!ev)
        return NULL;
    Py_XSETREF(o->sample_ev, ev);
    Py_RETURN_NONE;
}

static PyObject *pl_m_advance(PlantObject *o, PyObject *arg)
{
    int64_t t;
    if (!pl_bound(o) || as_i64(arg, &t) < 0 || pl_advance(o, t) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *pl_m_count_now(PlantObject *o, PyObject *Py_UNUSED(ignored))
{
    int64_t c;
    if (pl_advance_now(o) < 0 || pl_floor(o->pl.x, &c) < 0)
        return NULL;
    return PyLong_FromLongLong(c);
}

static PyObject *pl_m_position_now(PlantObject *o, PyObject *Py_UNUSED(ignored))
{
    if (pl_advance_now(o) < 0)
        return NULL;
    return pl_xobj(o, o->pl.x, o->pl.x_lim);
}

static PyObject *pl_m_velocity_now(PlantObject *o, PyObject *Py_UNUSED(ignored))
{
    if (pl_advance_now(o) < 0)
        return NULL;
    return PyFloat_FromDouble(o->pl.v);
}

static PyObject *pl_m_target_velocity(PlantObject *o, PyObject *Py_UNUSED(ignored))
{
    return PyFloat_FromDouble(o->pl.vt);
}

static PyObject *pl_m_read_drive(PlantObject *o, PyObject *Py_UNUSED(ignored))
{
    double drive, vt;
    if (!pl_bound(o) || pl_read_drive(o, &drive, &vt) < 0)
        return NULL;
    return Py_BuildValue("(dd)", drive, vt);
}

static PyObject *pl_m_on_pwm(PlantObject *o, PyObject *Py_UNUSED(timer))
{
    if (pl_drive_changed(o, 0) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* _pin_changed(port, pin, level, t_ps): the direction pin's subscription */
static PyObject *pl_m_pin_changed(PlantObject *o, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4)
        return PyErr_Format(PyExc_TypeError, "_pin_changed(port, pin, level, t_ps)");
    if (!pl_bound(o))
        return NULL;
    int eq = PyObject_RichCompareBool(args[1], o->dir_pin, Py_EQ);
    if (eq < 0 || (eq && pl_drive_changed(o, 0) < 0))
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *pl_m_drive_changed(PlantObject *o, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"force", NULL};
    int force = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|p:_drive_changed", kwlist, &force))
        return NULL;
    if (pl_drive_changed(o, force) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *pl_m_release(PlantObject *o, PyObject *Py_UNUSED(ignored))
{
    dh_plant_release_if_pulled_away(&o->pl);
    Py_RETURN_NONE;
}

static PyObject *pl_m_state_after(PlantObject *o, PyObject *arg)
{
    int64_t dt;
    if (as_i64(arg, &dt) < 0)
        return NULL;
    double x, v;
    dh_plant_state_after(&o->pl, dt, &x, &v);
    return Py_BuildValue("(dd)", x, v);
}

static PyObject *pl_m_seconds(PyObject *Py_UNUSED(cls), PyObject *arg)
{
    int64_t dt;
    if (as_i64(arg, &dt) < 0)
        return NULL;
    return PyFloat_FromDouble(dh_plant_seconds(dt));
}

static PyObject *pl_m_hit(PlantObject *o, PyObject *arg)
{
    int64_t t;
    if (!pl_bound(o) || as_i64(arg, &t) < 0 || pl_hit(o, t) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *pl_m_on_cross(PlantObject *o, PyObject *Py_UNUSED(ignored))
{
    if (pl_advance_now(o) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *pl_m_sample(PlantObject *o, PyObject *Py_UNUSED(ignored))
{
    if (pl_sample(o) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *pl_m_drop_lazy(PlantObject *o, PyObject *Py_UNUSED(ignored))
{
    if (!pl_bound(o) || pl_drop_lazy(o) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *pl_m_materialize(PlantObject *o, PyObject *Py_UNUSED(ignored))
{
    if (!pl_bound(o) || pl_materialize(o) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *pl_m_predict(PlantObject *o, PyObject *Py_UNUSED(ignored))
{
    if (!pl_bound(o) || pl_predict(o) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* _crossing_lower_bound() -> int or None (plant.py's value, also beyond int64) */
static PyObject *pl_m_lower_bound(PlantObject *o, PyObject *Py_UNUSED(ignored))
{
    int64_t lb;
    int b = dh_plant_crossing_lower_bound(&o->pl, &lb);
    if (b == 0)
        Py_RETURN_NONE;
    if (b == 1)
        return PyLong_FromLongLong(lb);
    if (b == -1) {
        PyErr_SetString(PyExc_OverflowError, "cannot convert float infinity to integer");
        return NULL;
    }
    /* beyond int64: int(value) - PS_PER_MS in Python integers */
    const dh_plant *pl = &o->pl;
    double av = fabs(pl->v), avt = fabs(pl->vt), speed = avt > av ? avt : av;
    double up = pl->p.lim[DH_PLANT_MAX] - pl->x, down = pl->x - pl->p.lim[DH_PLANT_MIN];
    double room = down < up ? down : up;
    PyObject *big = PyLong_FromDouble((room * 0.999 - 1e-6 * (fabs(pl->x) + 1.0)) / speed * 1e12);
    PyObject *ms = big ? PyLong_FromLongLong(DH_PLANT_PS_PER_MS) : NULL;
    PyObject *r = ms ? PyNumber_Subtract(big, ms) : NULL;
    Py_XDECREF(big);
    Py_XDECREF(ms);
    return r;
}

/* _history() -> [(t_ps, position, velocity, drive)], oldest first (plant.py's Sample fields) */
static PyObject *pl_m_history(PlantObject *o, PyObject *Py_UNUSED(ignored))
{
    PyObject *l = PyList_New((Py_ssize_t)o->hist.n);
    if (!l)
        return NULL;
    for (size_t i = 0; i < o->hist.n; i++) {
        const dh_sample *s = dh_history_at(&o->hist, i);
        PyObject *x = pl_xobj(o, s->x, s->x_lim);
        PyObject *it = x ? Py_BuildValue("(LNdd)", (long long)s->t, x, s->v, s->drive) : NULL;
        if (!it) {
            Py_DECREF(l);
            return NULL;
        }
        PyList_SET_ITEM(l, (Py_ssize_t)i, it);
    }
    return l;
}

/* _trace_state() -> (cap, stride, offered, t as int64 bytes, x as double bytes) */
static PyObject *pl_m_trace_state(PlantObject *o, PyObject *Py_UNUSED(ignored))
{
    const dh_trace *tr = &o->trace;
    return Py_BuildValue("(LLLy#y#)", (long long)tr->cap, (long long)tr->stride,
                         (long long)tr->offered, tr->t ? (const char *)tr->t : "",
                         (Py_ssize_t)(tr->n * sizeof(int64_t)), tr->x ? (const char *)tr->x : "",
                         (Py_ssize_t)(tr->n * sizeof(double)));
}

static PyObject *pl_get_t(PlantObject *o, void *Py_UNUSED(c))
{
    return PyLong_FromLongLong(o->pl.t);
}

static PyObject *pl_get_x(PlantObject *o, void *Py_UNUSED(c))
{
    if (o->pl.x_lim && !o->lim[o->pl.x_lim])
        return PyFloat_FromDouble(o->pl.x);
    return pl_xobj(o, o->pl.x, o->pl.x_lim);
}

static PyObject *pl_get_v(PlantObject *o, void *Py_UNUSED(c))
{
    return PyFloat_FromDouble(o->pl.v);
}

static PyObject *pl_get_drive(PlantObject *o, void *Py_UNUSED(c))
{
    return PyFloat_FromDouble(o->pl.drive);
}

static PyObject *pl_get_vt(PlantObject *o, void *Py_UNUSED(c))
{
    return PyFloat_FromDouble(o->pl.vt);
}

static PyObject *pl_get_pinned(PlantObject *o, void *Py_UNUSED(c))
{
    if (!o->pl.pinned)
        Py_RETURN_NONE;
    return Py_NewRef(pl_s_side[o->pl.pinned]);
}

static PyObject *pl_get_end_stops(PlantObject *o, void *Py_UNUSED(c))
{
    if (!o->end_stops)
        return PyList_New(0);
    return Py_NewRef(o->end_stops);
}

static PyObject *pl_get_cross_ev(PlantObject *o, void *Py_UNUSED(c))
{
    return Py_NewRef(o->cross_ev ? o->cross_ev : Py_None);
}

static PyObject *pl_get_sample_ev(PlantObject *o, void *Py_UNUSED(c))
{
    return Py_NewRef(o->sample_ev ? o->sample_ev : Py_None);
}

/* _lazy_cross: None or [t_lb, seq, (t0, x0, v0, vt, floor_t), handle] as plant.py holds it */
static PyObject *pl_get_lazy(PlantObject *o, void *Py_UNUSED(c))
{
    if (!o->lazy)
        Py_RETURN_NONE;
    PyObject *x0 = pl_xobj(o, o->lazy_x0, o->lazy_x0_lim);
    if (!x0)
        return NULL;
    return Py_BuildValue("[LL(LNddL)O]", (long long)o->lazy_tlb, (long long)o->lazy_seq,
                         (long long)o->lazy_t0, x0, o->lazy_v0, o->lazy_vt, (long long)o->lazy_floor,
                         o->lazy_handle ? o->lazy_handle : Py_None);
}

static PyGetSetDef pl_getset[] = {
    {"t", (getter)pl_get_t, NULL, "ps of the state", NULL},
    {"x", (getter)pl_get_x, NULL, "position at the last evaluation, counts", NULL},
    {"v", (getter)pl_get_v, NULL, "velocity at the last evaluation, counts/s", NULL},
    {"drive", (getter)pl_get_drive, NULL, "signed duty in effect", NULL},
    {"_vt", (getter)pl_get_vt, NULL, "target velocity in effect", NULL},
    {"pinned", (getter)pl_get_pinned, NULL, "\"min\"/\"max\" while resting against a stop", NULL},
    {"end_stops", (getter)pl_get_end_stops, NULL, "the crossings (the list itself)", NULL},
    {"_cross_ev", (getter)pl_get_cross_ev, NULL, "the end-stop event held, or None", NULL},
    {"_sample_ev", (getter)pl_get_sample_ev, NULL, "the next sample event", NULL},
    {"_lazy_cross", (getter)pl_get_lazy, NULL, "the deferred prediction, or None", NULL},
    {NULL},
};

static PyMethodDef pl_methods[] = {
    {"_bind", (PyCFunction)(void (*)(void))pl_bind, METH_FASTCALL,
     "_bind(machine, params, pwm, pwm_channel, direction, direction_pin, encoder, pwm_fast, "
     "enc_fast, dir_fast): the state at construction."},
    {"_start", (PyCFunction)pl_start, METH_NOARGS, "schedule the first sample event"},
    {"advance", (PyCFunction)pl_m_advance, METH_O, "Bring the state to virtual time t."},
    {"count_now", (PyCFunction)pl_m_count_now, METH_NOARGS, "the encoder position now"},
    {"position_now", (PyCFunction)pl_m_position_now, METH_NOARGS, NULL},
    {"velocity_now", (PyCFunction)pl_m_velocity_now, METH_NOARGS, NULL},
    {"target_velocity", (PyCFunction)pl_m_target_velocity, METH_NOARGS, NULL},
    {"_read_drive", (PyCFunction)pl_m_read_drive, METH_NOARGS, NULL},
    {"_on_pwm", (PyCFunction)pl_m_on_pwm, METH_O, "the PWM timer's listener"},
    {"_pin_changed", (PyCFunction)(void (*)(void))pl_m_pin_changed, METH_FASTCALL, NULL},
    {"_drive_changed", (PyCFunction)(void (*)(void))pl_m_drive_changed,
     METH_VARARGS | METH_KEYWORDS, NULL},
    {"_release_if_pulled_away", (PyCFunction)pl_m_release, METH_NOARGS, NULL},
    {"_state_after", (PyCFunction)pl_m_state_after, METH_O, NULL},
    {"_seconds", (PyCFunction)pl_m_seconds, METH_O | METH_STATIC,
     "dt_ps / PS_PER_S as the model computes it (tests)"},
    {"_hit", (PyCFunction)pl_m_hit, METH_O, NULL},
    {"_on_cross", (PyCFunction)pl_m_on_cross, METH_NOARGS, NULL},
    {"_sample", (PyCFunction)pl_m_sample, METH_NOARGS, NULL},
    {"_drop_lazy_cross", (PyCFunction)pl_m_drop_lazy, METH_NOARGS, NULL},
    {"_materialize_cross", (PyCFunction)pl_m_materialize, METH_NOARGS, NULL},
    {"_predict", (PyCFunction)pl_m_predict, METH_NOARGS, NULL},
    {"_crossing_lower_bound", (PyCFunction)pl_m_lower_bound, METH_NOARGS, NULL},
    {"_history", (PyCFunction)pl_m_history, METH_NOARGS, NULL},
    {"_trace_state", (PyCFunction)pl_m_trace_state, METH_NOARGS, NULL},
    {NULL},
};

static PyTypeObject PlantType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "duohil.engines.builtin.native._core.Plant",
    .tp_basicsize = sizeof(PlantObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The DC-motor plant (native/plant.c): the base of plant.DcMotorPlantNative.",
    .tp_new = pl_new,
    .tp_dealloc = (destructor)pl_dealloc,
    .tp_traverse = (traverseproc)pl_traverse,
    .tp_clear = (inquiry)pl_clear,
    .tp_methods = pl_methods,
    .tp_getset = pl_getset,
};

static int add_plant_type(PyObject *m)
{
#define PL_INTERN(var, s)                                   \
    if (!(var = PyUnicode_InternFromString(s)))             \
        return -1;
    PL_INTERN(pl_s_first_crossing_from, "_first_crossing_from");
    PL_INTERN(pl_s_record, "record");
    PL_INTERN(pl_s_end_stop, "end_stop");
    PL_INTERN(pl_s_side[0], "side");
    PL_INTERN(pl_s_side[DH_PLANT_MIN], "min");
    PL_INTERN(pl_s_side[DH_PLANT_MAX], "max");
    PL_INTERN(pl_s_t_ps, "t_ps");
    PL_INTERN(pl_s_position, "position");
    PL_INTERN(pl_s_velocity, "velocity");
    PL_INTERN(pl_s_name_sample, "plant.sample");
    PL_INTERN(pl_s_name_end_stop, "plant.end_stop");
    PL_INTERN(pl_s_channel_duty, "channel_duty");
    PL_INTERN(pl_s_pin_level, "pin_level");
    PL_INTERN(pl_s_levels, "_levels");
    PL_INTERN(pl_s_set_encoder_count, "set_encoder_count");
    PL_INTERN(pl_s_reserve_seq, "reserve_seq");
    PL_INTERN(pl_s_defer, "defer");
    PL_INTERN(pl_s_cancel_deferred, "cancel_deferred");
    PL_INTERN(pl_s_at_seq, "at_seq");
    PL_INTERN(pl_s_cancel, "cancel");
    PL_INTERN(pl_s_time, "time");
    PL_INTERN(pl_s_now, "now");
#undef PL_INTERN
    if (!(pl_s_kw_name = Py_BuildValue("(s)", "name"))
        || !(pl_s_kw_record = Py_BuildValue("(ssss)", "t", "side", "position", "velocity"))
        || !(pl_empty = PyTuple_New(0)))
        return -1;
    if (PyType_Ready(&PlantType) < 0)
        return -1;
    Py_INCREF(&PlantType);
    if (PyModule_AddObject(m, "Plant", (PyObject *)&PlantType) < 0) {
        Py_DECREF(&PlantType);
        return -1;
    }
    return 0;
}

/* == end of Plant [plantc] ======================================================================== */

/* == Gpio: the STM32H7 GPIO port (stm32_gpio.c) [gpioc] ==========================================
 *
 * _core.Gpio is the base of stm32_gpio.py's STM32_GPIOPortNative (the one copy): the registers,
 * the lock and the pin levels live in stm32_gpio.c, so a BSRR/ODR/MODER write from the C bus (the
 * `_native_mmio` capsule) or a drive from a Signal (the `_native_input` capsule) is handled
 * without a Python call unless a level changed. Then, pin by pin in pin order, the pin's
 * connected output (self._outputs[str(pin)], a _core.Signal set in C) follows the level and
 * every listener (a snapshot of the subscribed list) is called fn(self, pin, level, t_ps) with
 * t_ps = machine.now() read once per change. `_levels` is the C word (the plant reads it).
 * Uses machine_now, SignalType and signal_set_level from the sections above.
 */
#include "stm32_gpio.h"

static PyObject *gp_s_outputs, *gp_s_get, *gp_s_set, *gp_pin_key[DH_GPIO_PINS];

typedef struct {
    PyObject_HEAD
    dh_gpio g;
    PyObject *machine;                /* NULL until _bind */
    PyObject *listeners;              /* list of fn(port, pin, level, t_ps) */
    dh_port mmio_port, input_port;
} GpioObject;

static PyTypeObject GpioType;

/* The connected output of `pin` (a new reference), or NULL with no error when there is none. */
static PyObject *gp_output(GpioObject *o, unsigned pin)
{
    PyObject *outs = PyObject_GetAttr((PyObject *)o, gp_s_outputs);
    if (!outs)
        return NULL;
    PyObject *sig;
    if (PyDict_CheckExact(outs)) {
        sig = PyDict_GetItemWithError(outs, gp_pin_key[pin]);
        Py_XINCREF(sig);
    } else {
        PyObject *args[2] = {outs, gp_pin_key[pin]};
        sig = PyObject_VectorcallMethod(gp_s_get, args, 2 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    }
    Py_DECREF(outs);
    if (sig == Py_None)
        Py_CLEAR(sig);
    return sig;
}

static int gp_notify_pin(GpioObject *o, unsigned pin, int level, PyObject *t)
{
    PyObject *sig = gp_output(o, pin);
    if (!sig && PyErr_Occurred())
        return -1;
    if (sig) {
        int rc = 0;
        if (PyObject_TypeCheck(sig, &SignalType)) {
            rc = signal_set_level((SignalObject *)sig, level);
        } else {
            PyObject *args[2] = {sig, level ? Py_True : Py_False};
            PyObject *r = PyObject_VectorcallMethod(gp_s_set, args, 2 | PY_VECTORCALL_ARGUMENTS_OFFSET,
                                                    NULL);
            rc = r ? 0 : -1;
            Py_XDECREF(r);
        }
        Py_DECREF(sig);
        if (rc < 0)
            return -1;
    }
    PyObject *fns = PyList_GetSlice(o->listeners, 0, PY_SSIZE_T_MAX);     /* list(self._listeners) */
    if (!fns)
        return -1;
    PyObject *p = PyLong_FromUnsignedLong(pin), *lv = p ? PyLong_FromLong(level) : NULL;
    int rc = lv ? 0 : -1;
    for (Py_ssize_t i = 0; rc == 0 && i < PyList_GET_SIZE(fns); i++) {
        PyObject *args[4] = {(PyObject *)o, p, lv, t};
        PyObject *r = PyObject_Vectorcall(PyList_GET_ITEM(fns, i), args, 4, NULL);
        rc = r ? 0 : -1;
        Py_XDECREF(r);
    }
    Py_XDECREF(p);
    Py_XDECREF(lv);
    Py_DECREF(fns);
    return rc;
}

/* the host: levels changed from `old` to `levels` */
static int gp_levels_changed(void *h, uint32_t old, uint32_t levels)
{
    GpioObject *o = h;
    int64_t now;
    if (!o->machine) {
        PyErr_SetString(PyExc_RuntimeError, "Gpio used before _bind(...) or after it was cleared");
        return -1;
    }
    if (machine_now(o->machine, &now) < 0)
        return -1;
    PyObject *t = PyLong_FromLongLong(now);
    if (!t)
        return -1;
    Py_INCREF(o);                     /* a listener may drop what held us */
    uint32_t changed = old ^ levels;
    int rc = 0;
    for (unsigned pin = 0; rc == 0 && pin < DH_GPIO_PINS; pin++)
        if (changed >> pin & 1u)
            rc = gp_notify_pin(o, pin, (int)(levels >> pin & 1u), t);
    Py_DECREF(o);
    Py_DECREF(t);
    return rc;
}

static const dh_gpio_host gpio_host = {.levels_changed = gp_levels_changed};

/* -- ports.h: the register block and the inputs ---------------------------------------------- */

static int gpp_read(void *self, uint32_t offset, unsigned size, uint64_t *value)
{
    return dh_gpio_read(&((GpioObject *)self)->g, offset, size, value);
}

static int gpp_write(void *self, uint32_t offset, unsigned size, uint64_t value)
{
    GpioObject *o = self;
    Py_INCREF(o);
    int r = dh_gpio_write(&o->g, offset, size, value);
    Py_DECREF(o);
    return r;
}

static const dh_mmio_ops gpio_mmio_ops = {gpp_read, gpp_write};

static int gp_pin_ok(long pin)
{
    if (pin >= 0 && pin < DH_GPIO_PINS)
        return 1;
    PyErr_Format(PyExc_ValueError, "GPIO pin %ld is not 0 .. 15", pin);
    return 0;
}

static int gpp_set_input(void *self, int line, int level)
{
    GpioObject *o = self;
    if (!gp_pin_ok(line))
        return -1;
    Py_INCREF(o);
    int r = dh_gpio_set_input(&o->g, (unsigned)line, level);
    Py_DECREF(o);
    return r;
}

static const dh_input_ops gpio_input_ops = {gpp_set_input};

/* -- the type ------------------------------------------------------------------------------------ */

static PyObject *gp_new(PyTypeObject *type, PyObject *Py_UNUSED(args), PyObject *Py_UNUSED(kw))
{
    GpioObject *o = (GpioObject *)type->tp_alloc(type, 0);
    if (!o)
        return NULL;
    o->listeners = PyList_New(0);
    if (!o->listeners) {
        Py_DECREF(o);
        return NULL;
    }
    dh_gpio_init(&o->g, 0xFFFFFFFFu, 0, 0, &gpio_host, o);
    o->mmio_port.ops = &gpio_mmio_ops;
    o->mmio_port.self = o;
    o->input_port.ops = &gpio_input_ops;
    o->input_port.self = o;
    return (PyObject *)o;
}

static int gp_traverse(GpioObject *o, visitproc visit, void *arg)
{
    Py_VISIT(o->machine);
    Py_VISIT(o->listeners);
    return 0;          /* a heap subclass's type and __dict__ are visited by subtype_traverse */
}

static int gp_clear(GpioObject *o)
{
    Py_CLEAR(o->machine);
    Py_CLEAR(o->listeners);
    return 0;
}

static void gp_dealloc(GpioObject *o)
{
    PyObject_GC_UnTrack(o);
    gp_clear(o);
    Py_TYPE(o)->tp_free((PyObject *)o);     /* subtype_dealloc drops a heap subclass's type */
}

static int gp_u32(PyObject *v, uint32_t *out)
{
    if (!PyLong_Check(v)) {
        PyErr_Format(PyExc_TypeError, "an int is required, not %.100s", Py_TYPE(v)->tp_name);
        return -1;
    }
    unsigned long long x = PyLong_AsUnsignedLongLongMask(v);   /* Python's & keeps the low bits */
    if (x == (unsigned long long)-1 && PyErr_Occurred())
        return -1;
    *out = (uint32_t)x;
    return 0;
}

static int gp_pin_arg(PyObject *v, unsigned *pin)
{
    long p = PyLong_AsLong(v);
    if (p == -1 && PyErr_Occurred())
        return -1;
    if (!gp_pin_ok(p))
        return -1;
    *pin = (unsigned)p;
    return 0;
}

static int gp_listeners_ok(GpioObject *o)
{
    if (o->listeners)
        return 1;
    PyErr_SetString(PyExc_RuntimeError, "Gpio used after it was cleared");
    return 0;
}

/* _bind(machine, moder_reset, ospeedr_reset, pupdr_reset): the port at reset, not driven */
static PyObject *gp_bind(GpioObject *o, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4)
        return PyErr_Format(PyExc_TypeError, "_bind(machine, moder_reset, ospeedr_reset, pupdr_reset)");
    uint32_t moder, ospeedr, pupdr;
    if (gp_u32(args[1], &moder) < 0 || gp_u32(args[2], &ospeedr) < 0 || gp_u32(args[3], &pupdr) < 0)
        return NULL;
    if (!gp_listeners_ok(o))
        return NULL;
    Py_XSETREF(o->machine, Py_NewRef(args[0]));
    dh_gpio_init(&o->g, moder, ospeedr, pupdr, &gpio_host, o);
    Py_RETURN_NONE;
}

static PyObject *gp_read(GpioObject *o, PyObject *const *args, Py_ssize_t nargs)
{
    return mmio_read_method(&gpio_mmio_ops, o, args, nargs);
}

static PyObject *gp_write(GpioObject *o, PyObject *const *args, Py_ssize_t nargs)
{
    return mmio_write_method(&gpio_mmio_ops, o, args, nargs);
}

static PyObject *gp_reset(GpioObject *o, PyObject *Py_UNUSED(ignored))
{
    Py_INCREF(o);
    int r = dh_gpio_reset(&o->g);
    Py_DECREF(o);
    if (r < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* set_input(line, level): drive pin `line` from outside (level taken as a truth value) */
static PyObject *gp_set_input(GpioObject *o, PyObject *const *args, Py_ssize_t nargs)
{
    unsigned pin;
    if (nargs != 2)
        return PyErr_Format(PyExc_TypeError, "set_input(line, level) takes 2 arguments");
    int level = PyObject_IsTrue(args[1]);
    if (level < 0 || gp_pin_arg(args[0], &pin) < 0)
        return NULL;
    if (gpp_set_input(o, (int)pin, level) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *gp_release_input(GpioObject *o, PyObject *arg)
{
    unsigned pin;
    if (gp_pin_arg(arg, &pin) < 0)
        return NULL;
    Py_INCREF(o);
    int r = dh_gpio_release_input(&o->g, pin);
    Py_DECREF(o);
    if (r < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *gp_subscribe(GpioObject *o, PyObject *fn)
{
    if (!gp_listeners_ok(o) || PyList_Append(o->listeners, fn) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *gp_pin_mode(GpioObject *o, PyObject *arg)
{
    unsigned pin;
    if (gp_pin_arg(arg, &pin) < 0)
        return NULL;
    return PyLong_FromUnsignedLong(o->g.reg[DH_GPIO_MODER] >> (2 * pin) & 3u);
}

/* registers() -> [MODER, OTYPER, OSPEEDR, PUPDR, IDR, ODR, BSRR, LCKR, AFRL, AFRH], the words the
 * bus reads (IDR the levels, BSRR 0) */
static PyObject *gp_registers(GpioObject *o, PyObject *Py_UNUSED(ignored))
{
    PyObject *l = PyList_New(DH_GPIO_NREG);
    if (!l)
        return NULL;
    for (int r = 0; r < DH_GPIO_NREG; r++) {
        uint64_t v;
        dh_gpio_read(&o->g, 4u * (unsigned)r, 4, &v);
        PyObject *x = PyLong_FromUnsignedLongLong(v);
        if (!x) {
            Py_DECREF(l);
            return NULL;
        }
        PyList_SET_ITEM(l, r, x);
    }
    return l;
}

/* reset_values() -> the ten registers' reset words */
static PyObject *gp_reset_values(GpioObject *o, PyObject *Py_UNUSED(ignored))
{
    PyObject *l = PyList_New(DH_GPIO_NREG);
    if (!l)
        return NULL;
    for (int r = 0; r < DH_GPIO_NREG; r++) {
        PyObject *x = PyLong_FromUnsignedLong(o->g.reset[r]);
        if (!x) {
            Py_DECREF(l);
            return NULL;
        }
        PyList_SET_ITEM(l, r, x);
    }
    return l;
}

enum { GP_LEVELS, GP_EXT_DRIVEN, GP_EXT_LEVEL, GP_LOCKED, GP_LOCK_STEP };

static PyObject *gp_get_word(GpioObject *o, void *which)
{
    switch ((int)(intptr_t)which) {
    case GP_LEVELS:
        return PyLong_FromUnsignedLong(o->g.levels);
    case GP_EXT_DRIVEN:
        return PyLong_FromUnsignedLong(o->g.ext_driven);
    case GP_EXT_LEVEL:
        return PyLong_FromUnsignedLong(o->g.ext_level);
    case GP_LOCKED:
        return PyLong_FromUnsignedLong(dh_gpio_locked(&o->g));
    default:
        return PyLong_FromLong(o->g.lock_step);
    }
}

static PyObject *gp_get_listeners(GpioObject *o, void *Py_UNUSED(c))
{
    if (!gp_listeners_ok(o))
        return NULL;
    return Py_NewRef(o->listeners);
}

static PyObject *gp_get_mmio(GpioObject *o, void *Py_UNUSED(c))
{
    return PyCapsule_New(&o->mmio_port, DH_MMIO_CAPSULE, NULL);   /* holds no reference to o */
}

static PyObject *gp_get_input(GpioObject *o, void *Py_UNUSED(c))
{
    return PyCapsule_New(&o->input_port, DH_INPUT_CAPSULE, NULL);
}

static PyGetSetDef gp_getset[] = {
    {"_levels", (getter)gp_get_word, NULL, "the pin levels, bit n = pin n (the plant reads it)",
     (void *)GP_LEVELS},
    {"_ext_driven", (getter)gp_get_word, NULL, "pins driven from outside", (void *)GP_EXT_DRIVEN},
    {"_ext_level", (getter)gp_get_word, NULL, "their levels", (void *)GP_EXT_LEVEL},
    {"_locked", (getter)gp_get_word, NULL, "pins whose configuration LCKR froze", (void *)GP_LOCKED},
    {"_lock_step", (getter)gp_get_word, NULL, "position in the LCKK write sequence", (void *)GP_LOCK_STEP},
    {"_listeners", (getter)gp_get_listeners, NULL, "the subscribed fn(port, pin, level, t_ps)", NULL},
    {"_native_mmio", (getter)gp_get_mmio, NULL, "ports.h: the register block", NULL},
    {"_native_input", (getter)gp_get_input, NULL, "ports.h: set_input(pin, level)", NULL},
    {NULL},
};

static PyMethodDef gp_methods[] = {
    {"_bind", (PyCFunction)(void (*)(void))gp_bind, METH_FASTCALL,
     "_bind(machine, moder_reset, ospeedr_reset, pupdr_reset)"},
    {"read", (PyCFunction)(void (*)(void))gp_read, METH_FASTCALL, "read(offset, size=4) -> int"},
    {"write", (PyCFunction)(void (*)(void))gp_write, METH_FASTCALL, "write(offset, size, value)"},
    {"reset", (PyCFunction)gp_reset, METH_NOARGS,
     "reset(): registers and lock to reset, the outside drive kept, changed levels reported"},
    {"set_input", (PyCFunction)(void (*)(void))gp_set_input, METH_FASTCALL,
     "set_input(line, level): drive pin line from outside (a button, a sensor, the plant)"},
    {"release_input", (PyCFunction)gp_release_input, METH_O,
     "release_input(line): stop driving pin line from outside (it floats back to its pull)"},
    {"subscribe", (PyCFunction)gp_subscribe, METH_O,
     "subscribe(fn): fn(port, pin, level, t_ps) on every pin level change"},
    {"pin_mode", (PyCFunction)gp_pin_mode, METH_O, "pin_mode(pin) -> MODER's 2 bits of pin"},
    {"registers", (PyCFunction)gp_registers, METH_NOARGS,
     "[MODER, OTYPER, OSPEEDR, PUPDR, IDR, ODR, BSRR, LCKR, AFRL, AFRH] as the bus reads them"},
    {"reset_values", (PyCFunction)gp_reset_values, METH_NOARGS, "the ten registers' reset words"},
    {NULL},
};

static PyTypeObject GpioType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "duohil.engines.builtin.native._core.Gpio",
    .tp_basicsize = sizeof(GpioObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The STM32H7 GPIO port (native/stm32_gpio.c): the base of stm32_gpio.STM32_GPIOPortNative.",
    .tp_new = gp_new,
    .tp_dealloc = (destructor)gp_dealloc,
    .tp_traverse = (traverseproc)gp_traverse,
    .tp_clear = (inquiry)gp_clear,
    .tp_methods = gp_methods,
    .tp_getset = gp_getset,
};

static int add_gpio_type(PyObject *m)
{
    if (!(gp_s_outputs = PyUnicode_InternFromString("_outputs"))
        || !(gp_s_get = PyUnicode_InternFromString("get"))
        || !(gp_s_set = PyUnicode_InternFromString("set")))
        return -1;
    for (int pin = 0; pin < DH_GPIO_PINS; pin++)
        if (!(gp_pin_key[pin] = PyUnicode_FromFormat("%d", pin)))
            return -1;
    if (PyType_Ready(&GpioType) < 0)
        return -1;
    Py_INCREF(&GpioType);
    if (PyModule_AddObject(m, "Gpio", (PyObject *)&GpioType) < 0) {
        Py_DECREF(&GpioType);
        return -1;
    }
    return 0;
}

/* == end of Gpio [gpioc] =========================================================================== */

/* bench_steps(cpu, n, count, nvic, exc) -> None, for `make bench`: n steps of the two calls the
 * slice driver makes per slice (c_advance_to), all from C: the CPU's take_interrupts, then its
 * _run_slice(count) with `executing` set around it. With a _core.Nvic, exception `exc` is pended
 * before each step (as an IRQ's edge does between slices: nothing to kick). Virtual time does not
 * move, so the M7's storm counters are reset at each step (the bench's interrupts are back to
 * back, not a storm). The difference of two runs, an interrupt pended (or a line held high) and
 * not, is what an interrupt's entry and return cost the driver, no Python loop around them. */
static PyObject *mod_bench_steps(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5)
        return PyErr_Format(PyExc_TypeError, "bench_steps(cpu, n, count, nvic, exc)");
    PyObject *cpu = args[0];
    if (cs_require(cpu) < 0)
        return NULL;
    long long n = PyLong_AsLongLong(args[1]);
    long long count = PyLong_AsLongLong(args[2]);
    long exc = PyLong_AsLong(args[4]);
    if (PyErr_Occurred())
        return NULL;
    if (count < 1)
        return PyErr_Format(PyExc_ValueError, "bench_steps: count >= 1");
    NvicObject *nv = NULL;
    if (args[3] != Py_None) {
        if (!PyObject_TypeCheck(args[3], &NvicType))
            return PyErr_Format(PyExc_TypeError, "bench_steps: nvic is a _core.Nvic or None");
        nv = (NvicObject *)args[3];
        if (exc < 1 || exc >= DH_NVIC_MAX)
            return PyErr_Format(PyExc_ValueError, "bench_steps: no exception %ld", exc);
    }
    CpuStateObject *c = CS(cpu);
    int m7 = PyObject_TypeCheck(cpu, &CortexMStateType);
    for (long long i = 0; i < n; i++) {
        if (m7) {
            ((CortexMStateObject *)cpu)->rate_n = 0;
            ((CortexMStateObject *)cpu)->entries = 0;
        }
        if (nv)
            dh_nvic_set_pending(&nv->v, (int)exc);
        if (call_truth_m(cpu, c->m_take, str_take_interrupts) < 0)
            return NULL;
        PyObject *run = c->m_run, *r;
        if (!run)
            return PyErr_Format(PyExc_TypeError, "bench_steps: the CPU has no _run_slice");
        c->executing = 1;
        Py_INCREF(run);                   /* the slice may replace the instance's attribute */
        r = PyObject_CallOneArg(run, args[2]);
        Py_DECREF(run);
        c->executing = 0;
        if (!r)
            return NULL;
        Py_DECREF(r);
    }
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"bind_unicorn", mod_bind_unicorn, METH_O,
     "bind_unicorn(handle): resolve the uc_* API on the dlopen handle of the loaded libunicorn and "
     "check its version; ImportError with one line on a mismatch."},
    {"drives_natively", mod_drives_natively, METH_O,
     "drives_natively(cpu) -> True when the C scheduler runs cpu's time methods in C."},
    {"cpu_next_deadline", (PyCFunction)(void (*)(void))mod_cpu_next_deadline, METH_FASTCALL,
     "cpu_next_deadline(cpu, now, quantum) -> CpuCore.next_deadline in C (the slice driver's)"},
    {"cpu_advance_to", (PyCFunction)(void (*)(void))mod_cpu_advance_to, METH_FASTCALL,
     "cpu_advance_to(cpu, t): CpuCore.advance_to in C, now being cpu.machine.scheduler.now"},
    {"cpu_settle", (PyCFunction)(void (*)(void))mod_cpu_settle, METH_FASTCALL,
     "cpu_settle(cpu, t): CpuCore.settle in C"},
    {"machine_now", mod_machine_now, METH_O,
     "machine_now(machine) -> int: machine.now() as the native units read it"},
    {"register_machine_now", mod_register_machine_now, METH_O,
     "register_machine_now(Machine.now): units compute machine.now() in C for machines whose class "
     "keeps it."},
    {"register_cpu_class", mod_register_cpu_class, METH_O,
     "register_cpu_class(CpuCore): the C scheduler drives CPUs that keep this class's next_deadline, "
     "advance_to, settle, cycles_at and now_ps with its C slice driver."},
    {"set_stop_source", mod_set_stop_source, METH_VARARGS,
     "set_stop_source(holder, exc): every run_until step raises exc(holder.stop_request) once that "
     "attribute is not None (scheduler.py's Scheduler.stop_request)."},
    {"built_for", mod_built_for, METH_NOARGS, "The unicorn version of the headers we were built with."},
    {"emu_start", (PyCFunction)(void (*)(void))mod_emu_start, METH_FASTCALL, NULL},
    {"bench_slices", (PyCFunction)(void (*)(void))mod_bench_slices, METH_FASTCALL, NULL},
    {"bench_steps", (PyCFunction)(void (*)(void))mod_bench_steps, METH_FASTCALL, NULL},
    {"port_call", (PyCFunction)(void (*)(void))mod_port_call, METH_FASTCALL,    /* [usartc] */
     "port_call(capsule, *args): call a ports.h capsule's operation as a C unit would (tests)."},
    {"heap_selftest", (PyCFunction)(void (*)(void))mod_heap_selftest, METH_FASTCALL,
     "heap_selftest(n, seed) -> True when n pushes then n pops came out in (time, seq) order."},
    {NULL},
};

static struct PyModuleDef core_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "duohil.engines.builtin.native._core",
    .m_doc = "duohil's native core (C): scheduler heap and loop, unicorn C API binding.",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC PyInit__core(void)
{
#define INTERN(var, s)                                      \
    if (!(var = PyUnicode_InternFromString(s)))             \
        return NULL;
    INTERN(str_next_deadline, "next_deadline");
    INTERN(str_advance_to, "advance_to");
    INTERN(str_settle, "settle");
    INTERN(str_parked, "parked");
    INTERN(str_unpark, "unpark");
    INTERN(str_t, "t");
    INTERN(str_empty, "");
    INTERN(str_cycles_at, "cycles_at");
    INTERN(str_now_ps, "now_ps");
    INTERN(str_halted, "halted");
    INTERN(str_stall_until, "stall_until");
    INTERN(str_sleeping, "sleeping");
    INTERN(str_park_until, "park_until");
    INTERN(str_interrupt_pending, "interrupt_pending");
    INTERN(str_take_interrupts, "take_interrupts");
    INTERN(str_cycles, "cycles");
    INTERN(str_hz, "hz");
    INTERN(str_executing, "executing");
    INTERN(str_slice_start_ps, "slice_start_ps");
    INTERN(str_poll_addr, "_poll_addr");
    INTERN(str_poll_count, "_poll_count");
    INTERN(str_run_slice, "_run_slice");
    INTERN(str_instructions, "instructions");
    INTERN(str_slices, "slices");
    INTERN(str_machine, "machine");
    INTERN(str_record, "record");
    INTERN(str_stall_end, "stall_end");
    INTERN(str_cpu, "cpu");
    INTERN(str_name, "name");
    INTERN(str_scheduler, "scheduler");
    INTERN(str_now, "now");
    INTERN(str_pending_hz, "_pending_hz");
    INTERN(str_stop_request, "stop_request");
    INTERN(str_apply_hz, "_apply_hz");
#undef INTERN
    if (PyType_Ready(&EventType) < 0 || PyType_Ready(&SchedType) < 0 || PyType_Ready(&CortexMType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&core_module);
    if (!m)
        return NULL;
    Py_INCREF(&EventType);
    Py_INCREF(&SchedType);
    Py_INCREF(&CortexMType);
    if (PyModule_AddObject(m, "Event", (PyObject *)&EventType) < 0
        || PyModule_AddObject(m, "Scheduler", (PyObject *)&SchedType) < 0
        || PyModule_AddObject(m, "CortexM", (PyObject *)&CortexMType) < 0
        || PyModule_AddStringConstant(m, "UNICORN_HEADERS", duohil_uc_built_for()) < 0
        || add_nvic_type(m) < 0) {                       /* [nvicc] */
        Py_DECREF(m);
        return NULL;
    }
    /* rvtrap: the RV32 core */
    if (PyType_Ready(&RiscVType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(&RiscVType);
    if (PyModule_AddObject(m, "RiscV", (PyObject *)&RiscVType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    /* rvtrap: the CLINT's timer state */
    if (PyType_Ready(&ClintType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(&ClintType);
    if (PyModule_AddObject(m, "Clint", (PyObject *)&ClintType) < 0
        || PyModule_AddIntConstant(m, "CL_LOWER", CL_LOWER) < 0
        || PyModule_AddIntConstant(m, "CL_CANCEL", CL_CANCEL) < 0
        || PyModule_AddIntConstant(m, "CL_RAISE", CL_RAISE) < 0
        || PyModule_AddIntConstant(m, "CL_SCHEDULE", CL_SCHEDULE) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    /* rvtrap: the PLIC's state */
    if (PyType_Ready(&PlicType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(&PlicType);
    if (PyModule_AddObject(m, "Plic", (PyObject *)&PlicType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    /* each appended unit registers its types: [linkc] [cbus] [dmac] [dcachec] [usartc] */
    if (add_link_types(m) < 0 || add_espu_type(m) < 0 || add_bus_type(m) < 0 || add_dma_types(m) < 0
        || add_dcache_types(m) < 0 || add_usart_types(m) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    if (add_iwdg_type(m) < 0 || add_timer_type(m) < 0) {  /* [iwdgc, timerc] */
        Py_DECREF(m);
        return NULL;
    }
    if (add_cpustate_type(m) < 0 || add_vtlb_type(m) < 0       /* [cpustate] [vtlb] */
        || add_machinestate_type(m) < 0) {                       /* [machstate] */
        Py_DECREF(m);
        return NULL;
    }
    if (add_systick_type(m) < 0) {                       /* [systickc] */
        Py_DECREF(m);
        return NULL;
    }
    if (add_plant_type(m) < 0) {                         /* [plantc] */
        Py_DECREF(m);
        return NULL;
    }
    if (add_gpio_type(m) < 0) {                          /* [gpioc] */
        Py_DECREF(m);
        return NULL;
    }
    return m;
}

