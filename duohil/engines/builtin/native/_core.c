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
                PyObject *p = PyObject_GetAttr(cpu, str_parked);
                int is = p ? PyObject_IsTrue(p) : -1;
                Py_XDECREF(p);
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
    if (!cpu_fns[0])
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
    PyObject *v = PyObject_GetAttr(o, name);
    if (!v)
        return -1;
    int rc = PyObject_IsTrue(v);
    Py_DECREF(v);
    return rc;
}

/* *is_none = 1 when the attribute is None; else its value in *out. */
static int get_opt_i64(PyObject *o, PyObject *name, int64_t *out, int *is_none)
{
    PyObject *v = PyObject_GetAttr(o, name);
    if (!v)
        return -1;
    *is_none = v == Py_None;
    int rc = *is_none ? 0 : as_i64(v, out);
    Py_DECREF(v);
    return rc;
}

static int set_i64(PyObject *o, PyObject *name, int64_t v)
{
    PyObject *x = PyLong_FromLongLong(v);
    if (!x)
        return -1;
    int rc = PyObject_SetAttr(o, name, x);
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

/* cycles_at(t) = -((-t * hz) // PS_PER_S) */
static int cycles_at(PyObject *cpu, int64_t t, int64_t *out)
{
    int64_t hz;
    if (get_i64(cpu, str_hz, &hz) < 0)
        return -1;
    *out = -floordiv(-(i128)t * hz, PS_PER_S);
    return 0;
}

/* next_deadline: *none = 1 for "asks for no time". */
static int c_next_deadline(PyObject *cpu, int64_t now, int64_t quantum, int64_t *d, int *none)
{
    int b = get_truth(cpu, str_halted);
    if (b)
        return b < 0 ? -1 : (*none = 1, 0);
    int is_none;
    if (get_opt_i64(cpu, str_stall_until, d, &is_none) < 0)
        return -1;
    if (!is_none)
        return *none = 0, 0;
    if ((b = get_truth(cpu, str_parked)) < 0)
        return -1;
    if (b)
        return get_opt_i64(cpu, str_park_until, d, none);
    if ((b = get_truth(cpu, str_sleeping)) < 0)
        return -1;
    if (b) {
        int ip = call_truth(cpu, str_interrupt_pending);
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
    int64_t floor, cycles;
    if (cycles_at(cpu, t, &floor) < 0 || get_i64(cpu, str_cycles, &cycles) < 0)
        return -1;
    return cycles < floor ? set_i64(cpu, str_cycles, floor) : 0;
}

static int add_to(PyObject *cpu, PyObject *name, int64_t n)
{
    int64_t v;
    return get_i64(cpu, name, &v) < 0 ? -1 : set_i64(cpu, name, v + n);
}

static int record_stall_end(PyObject *cpu)
{
    int64_t cycles, hz;
    if (get_i64(cpu, str_cycles, &cycles) < 0 || get_i64(cpu, str_hz, &hz) < 0)
        return -1;
    int64_t now_ps = floordiv((i128)cycles * PS_PER_S, hz);
    PyObject *machine = PyObject_GetAttr(cpu, str_machine);
    if (!machine)
        return -1;
    PyObject *record = PyObject_GetAttr(machine, str_record);
    Py_DECREF(machine);
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

/* CpuCore.advance_to(t), the scheduler's clock being sched_now. */
static int c_advance_to(PyObject *cpu, int64_t t, int64_t sched_now)
{
    int64_t floor, target, cycles;
    if (cycles_at(cpu, sched_now, &floor) < 0 || get_i64(cpu, str_cycles, &cycles) < 0)
        return -1;
    if (cycles < floor && set_i64(cpu, str_cycles, floor) < 0)
        return -1;
    if (cycles_at(cpu, t, &target) < 0 || get_i64(cpu, str_cycles, &cycles) < 0)
        return -1;
    if (cycles >= target)
        return 0;
    int took = 0, b;
    int64_t v;
    int is_none;
    if ((b = get_truth(cpu, str_sleeping)) < 0)
        return -1;
    if (b) {
        if (get_opt_i64(cpu, str_stall_until, &v, &is_none) < 0)
            return -1;
        int fast = is_none;
        if (fast && (b = get_truth(cpu, str_parked)) != 0)
            fast = b < 0 ? -1 : 0;
        if (fast == 1 && (b = get_truth(cpu, str_halted)) != 0)
            fast = b < 0 ? -1 : 0;
        if (fast < 0)
            return -1;
        if (fast) {
            if ((b = call_truth(cpu, str_take_interrupts)) < 0)
                return -1;
            if (b) {
                if (PyObject_SetAttr(cpu, str_sleeping, Py_False) < 0)
                    return -1;
                took = 1;
            } else {
                if ((b = call_truth(cpu, str_interrupt_pending)) < 0)
                    return -1;
                if (!b)
                    return set_i64(cpu, str_cycles, target);
            }
        }
    }
    for (;;) {
        if (get_i64(cpu, str_cycles, &cycles) < 0)
            return -1;
        if (cycles >= target)
            return 0;
        if ((b = get_truth(cpu, str_halted)) < 0)
            return -1;
        if (b)
            return set_i64(cpu, str_cycles, target);
        if (get_opt_i64(cpu, str_stall_until, &v, &is_none) < 0)
            return -1;
        if (!is_none) {
            if (v >= t)
                return set_i64(cpu, str_cycles, target);
            int64_t ca;
            if (get_i64(cpu, str_cycles, &cycles) < 0 || cycles_at(cpu, v, &ca) < 0
                || set_i64(cpu, str_cycles, cycles > ca ? cycles : ca) < 0
                || PyObject_SetAttr(cpu, str_stall_until, Py_None) < 0 || record_stall_end(cpu) < 0)
                return -1;
            continue;
        }
        if ((b = get_truth(cpu, str_parked)) < 0)
            return -1;
        if (b) {
            if (get_opt_i64(cpu, str_park_until, &v, &is_none) < 0)
                return -1;
            if (is_none || v >= t)
                return set_i64(cpu, str_cycles, target);
            int64_t ca;
            if (get_i64(cpu, str_cycles, &cycles) < 0 || cycles_at(cpu, v, &ca) < 0
                || set_i64(cpu, str_cycles, cycles > ca ? cycles : ca) < 0)
                return -1;
            PyObject *r = PyObject_CallMethodNoArgs(cpu, str_unpark);
            if (!r)
                return -1;
            Py_DECREF(r);
            continue;
        }
        if (took) {
            took = 0;
        } else {
            if ((b = call_truth(cpu, str_take_interrupts)) < 0)
                return -1;
            if (b && PyObject_SetAttr(cpu, str_sleeping, Py_False) < 0)
                return -1;
        }
        if ((b = get_truth(cpu, str_sleeping)) < 0)
            return -1;
        if (b) {
            if ((b = call_truth(cpu, str_interrupt_pending)) < 0)
                return -1;
            if (!b)
                return set_i64(cpu, str_cycles, target);
            if (PyObject_SetAttr(cpu, str_sleeping, Py_False) < 0)
                return -1;
            continue;
        }
        int64_t hz;
        if (get_i64(cpu, str_cycles, &cycles) < 0 || get_i64(cpu, str_hz, &hz) < 0)
            return -1;
        int64_t n = target - cycles;
        if (PyObject_SetAttr(cpu, str_executing, Py_True) < 0
            || set_i64(cpu, str_slice_start_ps, floordiv((i128)cycles * PS_PER_S, hz)) < 0
            || PyObject_SetAttr(cpu, str_poll_addr, Py_None) < 0 || set_i64(cpu, str_poll_count, 0) < 0)
            return -1;
        PyObject *pn = PyLong_FromLongLong(n);
        if (!pn)
            return -1;
        PyObject *r = PyObject_CallMethodOneArg(cpu, str_run_slice, pn);
        Py_DECREF(pn);
        /* finally: executing = False, keeping _run_slice's exception */
        PyObject *et, *ev, *etb;
        PyErr_Fetch(&et, &ev, &etb);
        int rc = PyObject_SetAttr(cpu, str_executing, Py_False);
        if (rc < 0) {
            Py_XDECREF(et);
            Py_XDECREF(ev);
            Py_XDECREF(etb);
            Py_XDECREF(r);
            return -1;
        }
        PyErr_Restore(et, ev, etb);
        if (!r)
            return -1;
        Py_DECREF(r);
        if (set_i64(cpu, str_cycles, cycles + n) < 0 || add_to(cpu, str_instructions, n) < 0
            || add_to(cpu, str_slices, 1) < 0)
            return -1;
        /* a core clock change inside the slice (the RCC model) takes effect at its end */
        PyObject *pending = PyObject_GetAttr(cpu, str_pending_hz);
        if (!pending)
            return -1;
        if (pending != Py_None) {
            r = PyObject_CallMethodOneArg(cpu, str_apply_hz, pending);
            Py_DECREF(pending);
            if (!r)
                return -1;
            Py_DECREF(r);
            if (cycles_at(cpu, t, &target) < 0)
                return -1;
        } else {
            Py_DECREF(pending);
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
    PyObject *m = PyObject_GetAttr(cpu, str_machine);
    if (!m)
        return -1;
    PyObject *sc = PyObject_GetAttr(m, str_scheduler);
    Py_DECREF(m);
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
    if (as_i64(args[1], &now) < 0 || as_i64(args[2], &quantum) < 0
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
    if (as_i64(args[1], &t) < 0 || cpu_sched_now(args[0], NULL, &sched_now) < 0
        || c_advance_to(args[0], t, sched_now) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *mod_cpu_settle(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t nargs)
{
    int64_t t;
    if (nargs != 2)
        return PyErr_Format(PyExc_TypeError, "cpu_settle(cpu, t)");
    if (as_i64(args[1], &t) < 0 || c_settle(args[0], t) < 0)
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
        PyObject *pnow = PyLong_FromLongLong(now);
        PyObject *pq = PyLong_FromLongLong(quantum);
        if (!pnow || !pq) {
            Py_XDECREF(pnow);
            Py_XDECREF(pq);
            return -1;
        }
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(s->cpus); i++) {
            PyObject *cpu = PyList_GET_ITEM(s->cpus, i);
            if (PyList_GET_SIZE(active) >= nflags) {     /* add_cpu from inside this step */
                Py_DECREF(pnow);
                Py_DECREF(pq);
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
                    Py_DECREF(pnow);
                    Py_DECREF(pq);
                    return -1;
                }
                continue;
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
        Py_DECREF(pnow);
        Py_DECREF(pq);
        if (horizon > now) {
            PyObject *ph = PyLong_FromLongLong(horizon);
            if (!ph)
                return -1;
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
                        Py_DECREF(ph);
                        return -1;
                    }
                    continue;
                }
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
            Py_DECREF(ph);
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
    uc_err err = UC.emu_start((uc_engine *)uch, v[0], v[1], v[2], (size_t)v[3]);
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
        err = UC.emu_start((uc_engine *)uch, begin, 0xFFFFFFFFull, 0, (size_t)count);
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
    PyObject *fr_nvic, *fr_cpu, *fr_rest, *fr_mpu, *fr_scr, *fr_now;
    /* [nvicc] take_interrupts and the plain entry in C (fast_entry, take): the Python Nvic (vtor,
     * _st_resume), the full Python entry for the rare cases and its second half (_enter_after) */
    PyObject *fe_nvic, *fe_enter, *fe_after;
    long storm_entries, storm_rate_entries;      /* limits.py's STORM_ENTRIES, STORM_RATE_ENTRIES */
} CortexMObject;

/* [nvicc] defined with the Nvic binding below */
static PyObject *cm_fast_return(CortexMObject *c);
static PyObject *cm_set_fast_return(CortexMObject *c, PyObject *const *args, Py_ssize_t nargs);
static PyObject *cm_set_fast_entry(CortexMObject *c, PyObject *const *args, Py_ssize_t nargs);
static PyObject *cm_take(CortexMObject *c, PyObject *Py_UNUSED(ignored));

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
    Py_VISIT(c->fr_mpu);
    Py_VISIT(c->fr_scr);
    Py_VISIT(c->fr_now);
    Py_VISIT(c->fe_nvic);
    Py_VISIT(c->fe_enter);
    Py_VISIT(c->fe_after);
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
    Py_CLEAR(c->fr_mpu);
    Py_CLEAR(c->fr_scr);
    Py_CLEAR(c->fr_now);
    Py_CLEAR(c->fe_nvic);
    Py_CLEAR(c->fe_enter);
    Py_CLEAR(c->fe_after);
    return 0;
}

static void cm_dealloc(CortexMObject *c)
{
    PyObject_GC_UnTrack(c);
    cm_clear(c);
    Py_TYPE(c)->tp_free((PyObject *)c);
}

/* UC_HOOK_INTR: an exception return (intno 8) goes straight to on_return(), anything else to
 * on_intr(uc, intno, None); an exception either raises is kept in uc._hook_exception (the first
 * one wins) and stops the engine, as the unicorn binding's callback wrapper does. */
static void cm_intr_cb(uc_engine *uc, uint32_t intno, void *ud)
{
    CortexMObject *c = (CortexMObject *)ud;
    PyGILState_STATE g = PyGILState_Ensure();
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
    PyGILState_Release(g);
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
 * new_xpsr] or None when the frame could not be read (nothing written). */
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
    return rc ? cm_fail(c, rc) : u32_list(out, CM_UN_N);
}

static PyMethodDef cm_methods[] = {
    {"read_entry", (PyCFunction)cm_read_entry, METH_NOARGS,
     "read_entry() -> [r0, r1, r2, r3, r12, lr, pc, xpsr, sp, control]"},
    {"read_return", (PyCFunction)cm_read_return, METH_NOARGS,
     "read_return() -> [pc, msp, psp, control, xpsr, primask, basepri, faultmask]"},
    {"stack_enter", (PyCFunction)(void (*)(void))cm_stack_enter, METH_FASTCALL,
     "stack_enter(regs, pc, exc, vtor, stack) -> vector, -1 (stacking failed) or -2 (no vector)"},
    {"tail_chain", (PyCFunction)(void (*)(void))cm_tail_chain, METH_FASTCALL,
     "tail_chain(exc, exc_return, vtor, clear_faultmask) -> vector or -2"},
    {"unstack", (PyCFunction)(void (*)(void))cm_unstack, METH_FASTCALL,
     "unstack(sp, exc_return, control, clear_faultmask) -> [r0..lr, pc, sp, xpsr] or None"},
    {"hook_intr", (PyCFunction)(void (*)(void))cm_hook_intr, METH_FASTCALL,
     "hook_intr(uc, on_return, on_intr): UC_HOOK_INTR in C; intno 8 calls on_return() directly"},
    {"fast_return", (PyCFunction)(void (*)(void))cm_set_fast_return, METH_FASTCALL,   /* [nvicc] */
     "fast_return(nvic, cpu, rest, mpu, scr, now): intno 8 decides the plain exception return in C"},
    {"fast_entry", (PyCFunction)(void (*)(void))cm_set_fast_entry, METH_FASTCALL,    /* [nvicc] */
     "fast_entry(nvic_py, enter, after, storm_entries, storm_rate_entries): what take() needs"},
    {"take", (PyCFunction)cm_take, METH_NOARGS,                                      /* [nvicc] */
     "take() -> cortexm.py's take_interrupts(): plain entries in C, the others by enter(exc)"},
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
} RiscVObject;

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
    if (r)
        r->rv.uc = (uc_engine *)uch;
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
    {NULL},
};

static PyTypeObject RiscVType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "duohil.engines.builtin.native._core.RiscV",
    .tp_basicsize = sizeof(RiscVObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "RiscV(uch): one RV32 core's register access and machine-mode trap entry in C.",
    .tp_new = rv_new,
    .tp_methods = rv_methods,
};

/* -- end of the RiscV block ----------------------------------------------------------------------- */

/* -- Clint: the RISC-V CLINT's timer state (clint.c) for one CLINT ----------------------------------
 * (rvtrap block: mtime/mtimecmp and the MTIP decision; clint.py keeps registers, signals, events) */

typedef struct {
    PyObject_HEAD
    dh_clint cl;
} ClintObject;

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

static void clint_dealloc(ClintObject *c)
{
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

static int clint_shift(PyObject *o, int *shift)
{
    long v = PyLong_AsLong(o);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (v != 0 && v != 32) {
        PyErr_SetString(PyExc_ValueError, "Clint: shift must be 0 or 32");
        return -1;
    }
    *shift = (int)v;
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

/* set_mtime(value, shift, now) */
static PyObject *clint_set_mtime(ClintObject *c, PyObject *const *args, Py_ssize_t nargs)
{
    uint32_t v;
    int shift;
    int64_t now;
    if (nargs != 3)
        return PyErr_Format(PyExc_TypeError, "set_mtime(value, shift, now)");
    if (arg_u32(args[0], &v) < 0 || clint_shift(args[1], &shift) < 0 || clint_i64(args[2], &now) < 0)
        return NULL;
    dh_clint_set_mtime(&c->cl, v, shift, now);
    Py_RETURN_NONE;
}

/* set_cmp(n, value, shift) */
static PyObject *clint_set_cmp(ClintObject *c, PyObject *const *args, Py_ssize_t nargs)
{
    int n, shift;
    uint32_t v;
    if (nargs != 3)
        return PyErr_Format(PyExc_TypeError, "set_cmp(n, value, shift)");
    if (clint_hart(c, args[0], &n) < 0 || arg_u32(args[1], &v) < 0 || clint_shift(args[2], &shift) < 0)
        return NULL;
    dh_clint_set_cmp(&c->cl, n, v, shift);
    Py_RETURN_NONE;
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

/* update(n, now, level, ev_time or None) -> (CL_* flags, t or 0) */
static PyObject *clint_update(ClintObject *c, PyObject *const *args, Py_ssize_t nargs)
{
    int n;
    int64_t now, ev_time = 0, t = 0;
    if (nargs != 4)
        return PyErr_Format(PyExc_TypeError, "update(n, now, level, ev_time)");
    if (clint_hart(c, args[0], &n) < 0 || clint_i64(args[1], &now) < 0)
        return NULL;
    int level = PyObject_IsTrue(args[2]);
    if (level < 0)
        return NULL;
    int has_ev = args[3] != Py_None;
    if (has_ev && clint_i64(args[3], &ev_time) < 0)
        return NULL;
    int act = dh_clint_update(&c->cl, n, now, level, has_ev, ev_time, &t);
    return Py_BuildValue("(iL)", act, (long long)t);
}

/* write_cmp(n, value, shift, now, level, ev_time) -> (CL_* flags, t): set_cmp then update, one call
 * (the firmware's mtimecmp stores) */
static PyObject *clint_write_cmp(ClintObject *c, PyObject *const *args, Py_ssize_t nargs)
{
    int n, shift;
    uint32_t v;
    int64_t now, ev_time = 0, t = 0;
    if (nargs != 6)
        return PyErr_Format(PyExc_TypeError, "write_cmp(n, value, shift, now, level, ev_time)");
    if (clint_hart(c, args[0], &n) < 0 || arg_u32(args[1], &v) < 0 || clint_shift(args[2], &shift) < 0
        || clint_i64(args[3], &now) < 0)
        return NULL;
    int level = PyObject_IsTrue(args[4]);
    if (level < 0)
        return NULL;
    int has_ev = args[5] != Py_None;
    if (has_ev && clint_i64(args[5], &ev_time) < 0)
        return NULL;
    dh_clint_set_cmp(&c->cl, n, v, shift);
    int act = dh_clint_update(&c->cl, n, now, level, has_ev, ev_time, &t);
    return Py_BuildValue("(iL)", act, (long long)t);
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

static PyGetSetDef clint_getset[] = {
    {"offset", (getter)clint_get_offset, NULL, "mtime = offset + ticks(t), mod 2**64", NULL},
    {NULL},
};

static PyMethodDef clint_methods[] = {
    {"mtime", (PyCFunction)clint_mtime, METH_O, "mtime(now) -> mtime"},
    {"set_mtime", (PyCFunction)(void (*)(void))clint_set_mtime, METH_FASTCALL,
     "set_mtime(value, shift, now): a 32-bit half of mtime written"},
    {"set_cmp", (PyCFunction)(void (*)(void))clint_set_cmp, METH_FASTCALL,
     "set_cmp(n, value, shift): a 32-bit half of hart n's mtimecmp written"},
    {"write_cmp", (PyCFunction)(void (*)(void))clint_write_cmp, METH_FASTCALL,
     "write_cmp(n, value, shift, now, level, ev_time) -> (flags, t): set_cmp, then update"},
    {"cmp", (PyCFunction)clint_cmp, METH_O, "cmp(n) -> hart n's mtimecmp"},
    {"reset", (PyCFunction)clint_reset, METH_O, "reset(now): mtime 0 from now, mtimecmp all ones"},
    {"update", (PyCFunction)(void (*)(void))clint_update, METH_FASTCALL,
     "update(n, now, level, ev_time) -> (flags, t): what MTIP of hart n needs (clint.h CL_*)"},
    {NULL},
};

static PyTypeObject ClintType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "duohil.engines.builtin.native._core.Clint",
    .tp_basicsize = sizeof(ClintObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
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

static void plic_dealloc(PlicObject *o)
{
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

static PyObject *plic_set_priority(PlicObject *o, PyObject *const *args, Py_ssize_t nargs)
{
    int i;
    uint32_t v;
    if (nargs != 2)
        return PyErr_Format(PyExc_TypeError, "set_priority(i, value)");
    if (plic_int(args[0], 1, o->pl.sources, "source", &i) < 0 || arg_u32(args[1], &v) < 0)
        return NULL;
    return PyBool_FromLong(dh_plic_set_priority(&o->pl, i, v));
}

static PyObject *plic_set_enable(PlicObject *o, PyObject *const *args, Py_ssize_t nargs)
{
    int c, w;
    uint32_t v;
    if (nargs != 3)
        return PyErr_Format(PyExc_TypeError, "set_enable(c, w, value)");
    if (plic_int(args[0], 0, o->pl.contexts - 1, "context", &c) < 0
        || plic_int(args[1], 0, PL_WORDS - 1, "word", &w) < 0 || arg_u32(args[2], &v) < 0)
        return NULL;
    return PyBool_FromLong(dh_plic_set_enable(&o->pl, c, w, v));
}

static PyObject *plic_set_threshold(PlicObject *o, PyObject *const *args, Py_ssize_t nargs)
{
    int c;
    uint32_t v;
    if (nargs != 2)
        return PyErr_Format(PyExc_TypeError, "set_threshold(c, value)");
    if (plic_int(args[0], 0, o->pl.contexts - 1, "context", &c) < 0 || arg_u32(args[1], &v) < 0)
        return NULL;
    return PyBool_FromLong(dh_plic_set_threshold(&o->pl, c, v));
}

static PyObject *plic_complete(PlicObject *o, PyObject *arg)
{
    uint32_t v;
    if (arg_u32(arg, &v) < 0)
        return NULL;
    return PyBool_FromLong(dh_plic_complete(&o->pl, v));
}

static PyObject *plic_claim(PlicObject *o, PyObject *arg)
{
    int c;
    if (plic_int(arg, 0, o->pl.contexts - 1, "context", &c) < 0)
        return NULL;
    return PyLong_FromLong(dh_plic_claim(&o->pl, c));
}

static PyObject *plic_best(PlicObject *o, PyObject *arg)
{
    int c;
    if (plic_int(arg, 0, o->pl.contexts - 1, "context", &c) < 0)
        return NULL;
    return PyLong_FromLong(dh_plic_best(&o->pl, c));
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

static PyGetSetDef plic_getset[] = {
    {"bad_completions", (getter)plic_get_bad, NULL, "completions of ids not in flight", NULL},
    {NULL},
};

static PyMethodDef plic_methods[] = {
    {"set_input", (PyCFunction)(void (*)(void))plic_set_input, METH_FASTCALL,
     "set_input(line, level) -> whether the outputs need re-evaluating"},
    {"set_priority", (PyCFunction)(void (*)(void))plic_set_priority, METH_FASTCALL, "set_priority(i, v) -> bool"},
    {"set_enable", (PyCFunction)(void (*)(void))plic_set_enable, METH_FASTCALL, "set_enable(c, w, v) -> bool"},
    {"set_threshold", (PyCFunction)(void (*)(void))plic_set_threshold, METH_FASTCALL,
     "set_threshold(c, v) -> bool"},
    {"complete", (PyCFunction)plic_complete, METH_O, "complete(value) -> False when not in flight"},
    {"claim", (PyCFunction)plic_claim, METH_O, "claim(c) -> id or 0"},
    {"best", (PyCFunction)plic_best, METH_O, "best(c) -> the id context c would claim, or 0"},
    {"reset", (PyCFunction)plic_reset, METH_NOARGS, "reset(): lines still high pending again"},
    {"priority", (PyCFunction)plic_priority, METH_O, "priority(i)"},
    {"threshold", (PyCFunction)plic_threshold, METH_O, "threshold(c)"},
    {"bits", (PyCFunction)(void (*)(void))plic_bits, METH_FASTCALL, "bits(name[, c]) -> int"},
    {NULL},
};

static PyTypeObject PlicType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "duohil.engines.builtin.native._core.Plic",
    .tp_basicsize = sizeof(PlicObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
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

static void nv_dealloc(NvicObject *o)
{
    dh_nvic_free(&o->v);
    Py_TYPE(o)->tp_free((PyObject *)o);
}

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
    {"best_pending", (PyCFunction)nv_best_pending, METH_NOARGS,
     "best_pending() -> (exception, group priority); (0, 256) when nothing pending is enabled"},
    {"execution_priority", (PyCFunction)(void (*)(void))nv_execution_priority, METH_FASTCALL,
     "execution_priority(primask, basepri, faultmask) -> ARMv7-M ExecutionPriority()"},
    {"activate", (PyCFunction)nv_activate, METH_O,
     "activate(exc) -> True when SysTick's coalesced wraps must resume"},
    {"deactivate", (PyCFunction)nv_deactivate, METH_O, "deactivate(exc) -> False if it was not active"},
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
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_dealloc = (destructor)nv_dealloc,
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

static PyObject *str_fr_thread_ps, *str_fr_entries, *str_fr_returned_to, *str_fr_ret_state,
    *str_fr_suspended, *str_fr_value, *str_fr_stop, *str_fr_sleep;

static PyObject *cm_set_fast_return(CortexMObject *c, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 6 || !PyObject_TypeCheck(args[0], &NvicType))
        return PyErr_Format(PyExc_TypeError, "fast_return(nvic: Nvic, cpu, rest, mpu, scr, now)");
    if (!c->hooked)
        return PyErr_Format(PyExc_RuntimeError, "fast_return: hook_intr first");
    if (!str_fr_thread_ps) {
#define FR_INTERN(var, s)                                      \
        if (!(var = PyUnicode_InternFromString(s)))            \
            return NULL;
        FR_INTERN(str_fr_thread_ps, "_thread_ps");
        FR_INTERN(str_fr_entries, "_entries");
        FR_INTERN(str_fr_returned_to, "_returned_to");
        FR_INTERN(str_fr_ret_state, "_ret_state");
        FR_INTERN(str_fr_suspended, "suspended");
        FR_INTERN(str_fr_value, "value");
        FR_INTERN(str_fr_stop, "_stop");
        FR_INTERN(str_fr_sleep, "sleep");
#undef FR_INTERN
    }
    PyObject **slots[6] = {&c->fr_nvic, &c->fr_cpu, &c->fr_rest, &c->fr_mpu, &c->fr_scr, &c->fr_now};
    for (int i = 0; i < 6; i++) {
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
 * MPU not suspended, nothing to tail-chain into, the frame readable): deactivate, unstack, the
 * CPU's bookkeeping. The rest goes to Python: an invalid return to on_return() before anything
 * changed, the other cases to rest(...) right after the deactivation, as the Python path does. */
static PyObject *cm_fast_return(CortexMObject *c)
{
    dh_nvic *nv = &((NvicObject *)c->fr_nvic)->v;
    uint32_t r[CM_RET_N], u[CM_UN_N];
    if (dh_cm_read_return(&c->cm, r) < 0)
        return PyObject_CallNoArgs(c->on_return);
    uint32_t pc = r[CM_RET_PC], exc_ret = pc | 1, cur = r[CM_RET_XPSR] & 0x1FF;
    if (!cur || !fr_exc_return_ok(exc_ret) || !dh_nvic_test(nv->active, (int)cur))
        return PyObject_CallNoArgs(c->on_return);
    dh_nvic_deactivate(nv, (int)cur);
    uint32_t faultmask = r[CM_RET_FAULTMASK];
    int clear_fm = (faultmask & 1) && cur != 2;
    int32_t g;
    int n = dh_nvic_best_pending(nv, &g);
    int rest = n && g < dh_nvic_execution_priority(nv, r[CM_RET_PRIMASK], r[CM_RET_BASEPRI],
                                                       clear_fm ? 0 : faultmask);
    if (!rest) {
        PyObject *susp = PyObject_GetAttr(c->fr_mpu, str_fr_suspended);
        if (!susp)
            return NULL;
        rest = PyObject_IsTrue(susp);
        Py_DECREF(susp);
        if (rest < 0)
            return NULL;
    }
    if (!rest) {
        uint32_t sp = exc_ret & 4 ? r[CM_RET_PSP] : r[CM_RET_MSP];
        int rc = dh_cm_unstack(&c->cm, sp, exc_ret, r[CM_RET_CONTROL], clear_fm, u);
        if (rc == CM_ERR_UNSTACK)
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
        PyObject *now = PyObject_CallNoArgs(c->fr_now);
        if (!now)
            return NULL;
        int e = PyObject_SetAttr(cpu, str_fr_thread_ps, now);
        Py_DECREF(now);
        PyObject *zero = PyLong_FromLong(0);
        if (e < 0 || !zero || PyObject_SetAttr(cpu, str_fr_entries, zero) < 0) {
            Py_XDECREF(zero);
            return NULL;
        }
        Py_DECREF(zero);
    }
    PyObject *to = PyLong_FromUnsignedLong(u[CM_UN_PC] & ~1u);
    PyObject *st = Py_BuildValue("(kkkkkkkk)", (unsigned long)u[0], (unsigned long)u[1],
                                 (unsigned long)u[2], (unsigned long)u[3], (unsigned long)u[4],
                                 (unsigned long)u[5], (unsigned long)u[CM_UN_SP],
                                 (unsigned long)(u[CM_UN_XPSR] >> 27));
    int e = !to || !st || PyObject_SetAttr(cpu, str_fr_returned_to, to) < 0
            || PyObject_SetAttr(cpu, str_fr_ret_state, st) < 0;
    Py_XDECREF(to);
    Py_XDECREF(st);
    if (e)
        return NULL;
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
                if (PyObject_SetAttr(cpu, str_fr_stop, str_fr_sleep) < 0)
                    return NULL;
                UC.emu_stop(c->cm.uc);
            }
        }
    }
    Py_RETURN_NONE;
}


/* -- [nvicc] take_interrupts and the plain exception entry in C (cortexm.py's _enter) ------------ */


static PyObject *str_fe_halted, *str_fe_executing, *str_fe_mask_cache, *str_fe_entry_cache,
    *str_fe_rate_n, *str_fe_thread_pc, *str_fe_pc, *str_fe_vtor, *str_fe_ctrl, *str_fe_st_resume;

static PyObject *cm_set_fast_entry(CortexMObject *c, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5)
        return PyErr_Format(PyExc_TypeError,
                            "fast_entry(nvic_py, enter, after, storm_entries, storm_rate_entries)");
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
        FE_INTERN(str_fe_executing, "executing");
        FE_INTERN(str_fe_mask_cache, "_mask_cache");
        FE_INTERN(str_fe_entry_cache, "_entry_cache");
        FE_INTERN(str_fe_rate_n, "_rate_n");
        FE_INTERN(str_fe_thread_pc, "_thread_pc");
        FE_INTERN(str_fe_pc, "_pc");
        FE_INTERN(str_fe_vtor, "vtor");
        FE_INTERN(str_fe_ctrl, "ctrl");
        FE_INTERN(str_fe_st_resume, "_st_resume");
#undef FE_INTERN
    }
    PyObject **slots[3] = {&c->fe_nvic, &c->fe_enter, &c->fe_after};
    for (int i = 0; i < 3; i++) {
        Py_INCREF(args[i]);
        Py_XSETREF(*slots[i], args[i]);
    }
    Py_RETURN_NONE;
}

static int fe_truth(PyObject *o, PyObject *name)
{
    PyObject *v = PyObject_GetAttr(o, name);
    if (!v)
        return -1;
    int t = PyObject_IsTrue(v);
    Py_DECREF(v);
    return t;
}

static int fe_get_long(PyObject *o, PyObject *name, long *out)
{
    PyObject *v = PyObject_GetAttr(o, name);
    if (!v)
        return -1;
    *out = PyLong_AsLong(v);
    Py_DECREF(v);
    return (*out == -1 && PyErr_Occurred()) ? -1 : 0;
}

static int fe_set_long(PyObject *o, PyObject *name, long v)
{
    PyObject *x = PyLong_FromLong(v);
    if (!x)
        return -1;
    int rc = PyObject_SetAttr(o, name, x);
    Py_DECREF(x);
    return rc;
}

static int fe_set_u32(PyObject *o, PyObject *name, uint32_t v)
{
    PyObject *x = PyLong_FromUnsignedLong(v);
    if (!x)
        return -1;
    int rc = PyObject_SetAttr(o, name, x);
    Py_DECREF(x);
    return rc;
}

/* _mask_regs(): PRIMASK, BASEPRI, FAULTMASK; between slices through the CPU's _mask_cache. */
static int fe_masks(CortexMObject *c, uint32_t m[3])
{
    PyObject *cpu = c->fr_cpu;
    int executing = fe_truth(cpu, str_fe_executing);
    if (executing < 0)
        return -1;
    if (!executing) {
        PyObject *cache = PyObject_GetAttr(cpu, str_fe_mask_cache);
        if (!cache)
            return -1;
        if (cache != Py_None) {
            int rc = 0;
            for (int i = 0; i < 3 && !rc; i++) {
                PyObject *x = PySequence_GetItem(cache, i);
                rc = x ? arg_u32(x, &m[i]) : -1;
                Py_XDECREF(x);
            }
            Py_DECREF(cache);
            return rc;
        }
        Py_DECREF(cache);
    }
    int ids[3] = {UC_ARM_REG_PRIMASK, UC_ARM_REG_BASEPRI, UC_ARM_REG_FAULTMASK};
    void *ptrs[3] = {&m[0], &m[1], &m[2]};
    m[0] = m[1] = m[2] = 0;
    uc_err err = UC.reg_read_batch(c->cm.uc, ids, ptrs, 3);
    if (err != UC_ERR_OK) {
        PyErr_Format(PyExc_RuntimeError, "unicorn: %s", UC.strerror(err));
        return -1;
    }
    if (!executing) {
        PyObject *l = u32_list(m, 3);
        if (!l)
            return -1;
        int rc = PyObject_SetAttr(cpu, str_fe_mask_cache, l);
        Py_DECREF(l);
        return rc;
    }
    return 0;
}

/* One entry into `exc`: in C when nothing but the plain case can happen (no storm test due, no
 * FP frame, the MPU off, the frame written), else by the Python entry. 0, or -1 with an error. */
static int fe_enter(CortexMObject *c, dh_nvic *nv, int exc)
{
    PyObject *cpu = c->fr_cpu, *r;
    PyObject *cache = PyObject_GetAttr(cpu, str_fe_entry_cache);
    if (!cache)
        return -1;
    uint32_t regs[CM_ENTRY_N];
    int rc = cache == Py_None ? dh_cm_read_entry(&c->cm, regs) : arg_regs(cache, regs);
    if (rc) {
        Py_DECREF(cache);
        if (rc > 0 || !PyErr_Occurred())
            cm_fail(c, rc);
        return -1;
    }
    long rate_n, entries = 0, mpu_ctrl;
    uint32_t handler = regs[CM_XPSR] & 0x1FF;
    int plain = fe_get_long(cpu, str_fe_rate_n, &rate_n) == 0
                && (handler ? fe_get_long(cpu, str_fr_entries, &entries) == 0 : 1)
                && fe_get_long(c->fr_mpu, str_fe_ctrl, &mpu_ctrl) == 0;
    if (!plain) {
        Py_DECREF(cache);
        return -1;
    }
    plain = rate_n + 1 < c->storm_rate_entries && !(regs[CM_CONTROL] & 4) && !(mpu_ctrl & 1)
            && (!handler || entries + 1 < c->storm_entries);
    if (!plain) {               /* nothing has changed: the Python entry does it all */
        Py_DECREF(cache);
        PyObject *n = PyLong_FromLong(exc);
        r = n ? PyObject_CallOneArg(c->fe_enter, n) : NULL;
        Py_XDECREF(n);
        Py_XDECREF(r);
        return r ? 0 : -1;
    }
    /* _entry_cache consumed; the storm counters and the thread-mode marks */
    if ((cache != Py_None && PyObject_SetAttr(cpu, str_fe_entry_cache, Py_None) < 0)
        || fe_set_long(cpu, str_fe_rate_n, rate_n + 1) < 0) {
        Py_DECREF(cache);
        return -1;
    }
    uint32_t pc = regs[CM_PC];
    if (!handler) {
        PyObject *now = PyObject_CallNoArgs(c->fr_now);
        int e = !now || PyObject_SetAttr(cpu, str_fr_thread_ps, now) < 0
                || fe_set_u32(cpu, str_fe_thread_pc, pc) < 0 || fe_set_long(cpu, str_fr_entries, 0) < 0;
        Py_XDECREF(now);
        if (e) {
            Py_DECREF(cache);
            return -1;
        }
    } else if (fe_set_long(cpu, str_fr_entries, entries + 1) < 0) {
        Py_DECREF(cache);
        return -1;
    }
    long vtor;
    if (fe_get_long(c->fe_nvic, str_fe_vtor, &vtor) < 0) {
        Py_DECREF(cache);
        return -1;
    }
    uint32_t vec = 0;
    rc = dh_cm_stack(&c->cm, regs, pc);
    if (!rc)
        rc = dh_cm_enter(&c->cm, regs, (uint32_t)exc, (uint32_t)vtor, &vec);
    if (rc == CM_ERR_STACK || rc == CM_ERR_VECTOR) {     /* _enter_after: STKERR, VECTTBL */
        PyObject *regs_l = cache != Py_None ? (Py_INCREF(cache), cache) : u32_list(regs, CM_ENTRY_N);
        Py_DECREF(cache);
        if (!regs_l)
            return -1;
        r = PyObject_CallFunction(c->fe_after, "Okil", regs_l, (unsigned long)pc, exc, (long)rc);
        Py_DECREF(regs_l);
        Py_XDECREF(r);
        return r ? 0 : -1;
    }
    Py_DECREF(cache);
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
    if (fe_set_u32(cpu, str_fe_pc, vec & ~1u) < 0 || PyObject_SetAttr(cpu, str_fr_returned_to, Py_None) < 0
        || PyObject_SetAttr(cpu, str_fr_ret_state, Py_None) < 0)
        return -1;
    return 0;
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
    {"register_cpu_class", mod_register_cpu_class, METH_O,
     "register_cpu_class(CpuCore): the C scheduler drives CPUs that keep this class's next_deadline, "
     "advance_to, settle, cycles_at and now_ps with its C slice driver."},
    {"set_stop_source", mod_set_stop_source, METH_VARARGS,
     "set_stop_source(holder, exc): every run_until step raises exc(holder.stop_request) once that "
     "attribute is not None (scheduler.py's Scheduler.stop_request)."},
    {"built_for", mod_built_for, METH_NOARGS, "The unicorn version of the headers we were built with."},
    {"emu_start", (PyCFunction)(void (*)(void))mod_emu_start, METH_FASTCALL, NULL},
    {"bench_slices", (PyCFunction)(void (*)(void))mod_bench_slices, METH_FASTCALL, NULL},
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
    return m;
}
