/* The hand-off of a JavaScript run's end from V8's thread to the worker's event loop, without the GIL.
 *
 * mini-racer calls one C callback, on the isolate's own thread, for every completed eval and every
 * call of a JS callback. Through ctypes, each of those takes the GIL: V8's thread then waits for the
 * event loop's thread to let go of it, and the loop's thread waits to take it back. This module is
 * the callback mini-racer gets instead (handoff.py wires it up). Two kinds of callback ids never
 * touch Python on V8's thread:
 *
 *   QUIET   an eval whose value nobody needs (a run's `$fnbox.go()`): its value is freed here, unless
 *           it is an error, which goes to Python as before;
 *   SIGNAL  a run's `notify`: the mailbox (see mailbox.py) is copied while JS waits, as Python would
 *           read it, and a record {id, copy, size, time} is written to the pipe of the event loop
 *           that waits for the run; that loop reads it when it next looks at its file descriptors.
 *           Only for the runs Python expects (one, or a batch's, whose ids follow each other),
 *           each once and in order: a notify of anything else (work a run left behind calling
 *           the runtime again and again, say) goes to Python, which reads the mailbox in place,
 *           so no more than one copy per expected run is ever waiting in a pipe.
 *
 * Every other id, and a QUIET or SIGNAL one that cannot be handled here (no pipe, a full pipe, no
 * memory), is forwarded to Python's callback unchanged. Ids carry their engine's slot in bits 32-60;
 * a slot holds what this side needs of its engine, guarded by one mutex. The GIL is never taken
 * while that mutex is held, and the mutex is never held while calling into mini-racer.
 *
 * Freeing a value here holds mini-racer's context for the length of the call: were the engine to
 * free its context meanwhile, the last reference would drop on V8's own thread, which then waits
 * for itself for good. So an engine seals its slot before freeing its context: from then on this
 * side frees nothing (the context frees what is left), and `seal` returns once no free is under way.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define QUIET (1ULL << 62)
#define SIGNAL (1ULL << 61)
#define SLOT_OF(id) ((size_t)(((id) >> 32) & 0x1fffffffULL))
#define HEADER_SLOTS 16
#define FIRST_ERROR_TYPE 200 /* mini-racer's value types from here on are exceptions */
#define NO_RUN INT64_MIN

typedef void (*callback_fn)(uint64_t, void *);
typedef void (*free_fn)(uint64_t, void *);

/* mini-racer's BinaryValue (0.14): a union, its length, its type. */
struct raw_value {
    union {
        void *ptr;
        int64_t integer;
        double number;
    } value;
    size_t len;
    uint8_t type;
};

struct slot {
    int used;
    int fd;                  /* the waiting loop's pipe, or -1 */
    int64_t expected;        /* the first run id a SIGNAL may hand over, or NO_RUN */
    int64_t last;            /* the last one (a batch's runs have consecutive ids) */
    double ended;            /* when the last SIGNAL handed over was made */
    uint64_t context;        /* mini-racer's context id */
    const int32_t *mailbox;  /* header, then `capacity` UTF-16 units */
    uint32_t capacity;
    int sealed;              /* its context is being freed: no more free_value */
    int freeing;             /* free_value calls under way */
};

/* What a SIGNAL callback writes to a pipe: 32 bytes, well under PIPE_BUF, so never torn. */
struct record {
    uint64_t id;
    uint64_t copy; /* a malloc'd copy of the mailbox, for take() */
    uint64_t size;
    double ended;  /* CLOCK_MONOTONIC seconds, as time.perf_counter() */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t freed = PTHREAD_COND_INITIALIZER; /* a slot's `freeing` went down */
static struct slot *slots = NULL;
static size_t slot_count = 0;
static callback_fn forward = NULL;
static free_fn free_value = NULL;

static uint32_t clamp(int32_t value, uint32_t high) {
    if (value < 0) return 0;
    return (uint32_t)value > high ? high : (uint32_t)value;
}

/* The mailbox's header and the text a Mail is read from: the stream, and a ready outcome. */
static void *copy_mailbox(const struct slot *s, uint64_t *size) {
    const int32_t *header = s->mailbox;
    uint32_t end = clamp(header[2], s->capacity);
    if (header[1] == 1) { /* READY: the outcome is at [start, start + length) */
        uint32_t start = clamp(header[3], s->capacity);
        uint32_t outcome_end = start + clamp(header[4], s->capacity - start);
        if (outcome_end > end) end = outcome_end;
    }
    *size = HEADER_SLOTS * 4 + (uint64_t)end * 2;
    void *copy = malloc(*size);
    if (copy != NULL) memcpy(copy, header, *size);
    return copy;
}

/* Free a value of slot `index` (whose context is `context`), unless the slot is sealed; the lock is held. */
static void release_locked(size_t index, uint64_t context, void *value) {
    if (value == NULL || slots[index].sealed) return; /* the context frees it */
    slots[index].freeing++;
    pthread_mutex_unlock(&lock);
    free_value(context, value);
    pthread_mutex_lock(&lock);
    if (--slots[index].freeing == 0 && slots[index].sealed) pthread_cond_broadcast(&freed);
}

static void trampoline(uint64_t id, void *value) {
    if (id & (QUIET | SIGNAL)) {
        const struct raw_value *raw = value;
        pthread_mutex_lock(&lock);
        size_t index = SLOT_OF(id);
        struct slot s = index < slot_count ? slots[index] : (struct slot){0};
        if (s.used && !s.sealed && (id & QUIET)) {
            if (raw != NULL && raw->type < FIRST_ERROR_TYPE) {
                release_locked(index, s.context, value);
                pthread_mutex_unlock(&lock);
                return;
            }
            pthread_mutex_unlock(&lock);
            forward(id, value);
            return;
        }
        int64_t run = s.mailbox != NULL ? (int64_t)s.mailbox[0] : NO_RUN;
        if (s.used && !s.sealed && s.fd >= 0 && s.mailbox != NULL && s.expected != NO_RUN && s.expected <= run &&
            run <= s.last) {
            struct record record = {id, 0, 0, 0.0};
            void *copy = copy_mailbox(&s, &record.size);
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            record.ended = (double)now.tv_sec + (double)now.tv_nsec * 1e-9;
            record.copy = (uint64_t)(uintptr_t)copy;
            ssize_t written = copy == NULL ? -1 : write(s.fd, &record, sizeof record);
            if (written == (ssize_t)sizeof record) {
                /* Each run at most once, in order: a batch's later runs stay expected. */
                slots[index].expected = run < s.last ? run + 1 : NO_RUN;
                slots[index].ended = record.ended;
                release_locked(index, s.context, value);
                pthread_mutex_unlock(&lock);
                return;
            }
            pthread_mutex_unlock(&lock);
            free(copy); /* the pipe is full or gone: Python reads the mailbox itself */
            forward(id, value);
            return;
        }
        pthread_mutex_unlock(&lock);
    }
    forward(id, value);
}

static PyObject *handoff_trampoline(PyObject *self, PyObject *args) {
    return PyLong_FromVoidPtr((void *)trampoline);
}

static PyObject *handoff_configure(PyObject *self, PyObject *args) {
    PyObject *forward_address, *free_address;
    if (!PyArg_ParseTuple(args, "OO", &forward_address, &free_address)) return NULL;
    void *f = PyLong_AsVoidPtr(forward_address);
    void *v = PyLong_AsVoidPtr(free_address);
    if (PyErr_Occurred()) return NULL;
    pthread_mutex_lock(&lock);
    forward = (callback_fn)f;
    free_value = (free_fn)v;
    pthread_mutex_unlock(&lock);
    Py_RETURN_NONE;
}

static PyObject *handoff_open_slot(PyObject *self, PyObject *args) {
    pthread_mutex_lock(&lock);
    size_t index = 0;
    while (index < slot_count && slots[index].used) index++;
    if (index == slot_count) {
        size_t count = slot_count ? slot_count * 2 : 64;
        if (count > 0x1fffffffULL) {
            pthread_mutex_unlock(&lock);
            return PyErr_Format(PyExc_RuntimeError, "too many isolates");
        }
        struct slot *grown = realloc(slots, count * sizeof *slots);
        if (grown == NULL) {
            pthread_mutex_unlock(&lock);
            return PyErr_NoMemory();
        }
        memset(grown + slot_count, 0, (count - slot_count) * sizeof *slots);
        slots = grown;
        slot_count = count;
    }
    slots[index] = (struct slot){1, -1, NO_RUN, NO_RUN, 0.0, 0, NULL, 0, 0, 0};
    pthread_mutex_unlock(&lock);
    return PyLong_FromSize_t(index);
}

static int slot_arg(Py_ssize_t index) {
    if (index < 0 || (size_t)index >= slot_count || !slots[index].used) {
        PyErr_SetString(PyExc_ValueError, "no such slot");
        return 0;
    }
    return 1;
}

static PyObject *handoff_bind(PyObject *self, PyObject *args) {
    Py_ssize_t index;
    unsigned long long context;
    if (!PyArg_ParseTuple(args, "nK", &index, &context)) return NULL;
    pthread_mutex_lock(&lock);
    int ok = slot_arg(index);
    if (ok) slots[index].context = context;
    pthread_mutex_unlock(&lock);
    if (!ok) return NULL;
    Py_RETURN_NONE;
}

static PyObject *handoff_set_mailbox(PyObject *self, PyObject *args) {
    Py_ssize_t index;
    PyObject *address;
    unsigned int capacity;
    if (!PyArg_ParseTuple(args, "nOI", &index, &address, &capacity)) return NULL;
    void *pointer = PyLong_AsVoidPtr(address);
    if (PyErr_Occurred()) return NULL;
    pthread_mutex_lock(&lock);
    int ok = slot_arg(index);
    if (ok) {
        slots[index].mailbox = pointer;
        slots[index].capacity = capacity;
    }
    pthread_mutex_unlock(&lock);
    if (!ok) return NULL;
    Py_RETURN_NONE;
}

static PyObject *handoff_set_fd(PyObject *self, PyObject *args) {
    Py_ssize_t index;
    int fd;
    if (!PyArg_ParseTuple(args, "ni", &index, &fd)) return NULL;
    pthread_mutex_lock(&lock);
    int ok = slot_arg(index);
    if (ok) slots[index].fd = fd;
    pthread_mutex_unlock(&lock);
    if (!ok) return NULL;
    Py_RETURN_NONE;
}

/* The runs whose outcomes SIGNALs of this slot may hand over, each once and in order: ids
 * first..last (int32s, as JS writes them; last defaults to first). */
static PyObject *handoff_expect(PyObject *self, PyObject *args) {
    Py_ssize_t index;
    int run_id, last = INT32_MIN;
    if (!PyArg_ParseTuple(args, "ni|i", &index, &run_id, &last)) return NULL;
    pthread_mutex_lock(&lock);
    int ok = slot_arg(index);
    if (ok) {
        slots[index].expected = run_id;
        slots[index].last = last < run_id ? run_id : last;
    }
    pthread_mutex_unlock(&lock);
    if (!ok) return NULL;
    Py_RETURN_NONE;
}

/* No free_value for this slot from now on; returns once none is under way (its context may then go). */
static PyObject *handoff_seal(PyObject *self, PyObject *args) {
    Py_ssize_t index;
    if (!PyArg_ParseTuple(args, "n", &index)) return NULL;
    Py_BEGIN_ALLOW_THREADS
    pthread_mutex_lock(&lock);
    if (index >= 0 && (size_t)index < slot_count && slots[index].used) {
        slots[index].sealed = 1;
        while (slots[index].freeing > 0) pthread_cond_wait(&freed, &lock);
    }
    pthread_mutex_unlock(&lock);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyObject *handoff_close_slot(PyObject *self, PyObject *args) {
    Py_ssize_t index;
    if (!PyArg_ParseTuple(args, "n", &index)) return NULL;
    pthread_mutex_lock(&lock);
    if (index >= 0 && (size_t)index < slot_count) slots[index] = (struct slot){0, -1, NO_RUN, NO_RUN, 0.0, 0, NULL, 0, 0, 0};
    pthread_mutex_unlock(&lock);
    Py_RETURN_NONE;
}

/* No slot writes to `fd` any more (after this returns, the caller may close it). */
static PyObject *handoff_retire_fd(PyObject *self, PyObject *args) {
    int fd;
    if (!PyArg_ParseTuple(args, "i", &fd)) return NULL;
    pthread_mutex_lock(&lock);
    for (size_t index = 0; index < slot_count; index++) {
        if (slots[index].used && slots[index].fd == fd) slots[index].fd = -1;
    }
    pthread_mutex_unlock(&lock);
    Py_RETURN_NONE;
}

/* When the last SIGNAL this slot handed over was made (0.0 if none): as a record's `ended`. */
static PyObject *handoff_ended(PyObject *self, PyObject *args) {
    Py_ssize_t index;
    if (!PyArg_ParseTuple(args, "n", &index)) return NULL;
    pthread_mutex_lock(&lock);
    double ended = index >= 0 && (size_t)index < slot_count && slots[index].used ? slots[index].ended : 0.0;
    pthread_mutex_unlock(&lock);
    return PyFloat_FromDouble(ended);
}

/* Compare-and-swap an int32 of shared memory, sequentially consistent as JS's Atomics are: what it held. */
static PyObject *handoff_swap(PyObject *self, PyObject *args) {
    PyObject *address;
    int expected, desired;
    if (!PyArg_ParseTuple(args, "Oii", &address, &expected, &desired)) return NULL;
    int32_t *word = PyLong_AsVoidPtr(address);
    if (PyErr_Occurred()) return NULL;
    if (word == NULL || ((uintptr_t)word & 3) != 0) return PyErr_Format(PyExc_ValueError, "not an int32's address");
    int32_t seen = expected;
    __atomic_compare_exchange_n(word, &seen, desired, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    return PyLong_FromLong(seen);
}

/* A record's copy of the mailbox, as bytes; the copy is freed. */
static PyObject *handoff_take(PyObject *self, PyObject *args) {
    unsigned long long address, size;
    if (!PyArg_ParseTuple(args, "KK", &address, &size)) return NULL;
    void *copy = (void *)(uintptr_t)address;
    PyObject *data = PyBytes_FromStringAndSize(copy, (Py_ssize_t)size);
    free(copy);
    return data;
}

static PyMethodDef methods[] = {
    {"trampoline", handoff_trampoline, METH_NOARGS, "The address of the C callback to give mini-racer."},
    {"configure", handoff_configure, METH_VARARGS, "configure(forward, free_value): Python's callback, mr_free_value."},
    {"open_slot", handoff_open_slot, METH_NOARGS, "A free slot for a new engine."},
    {"bind", handoff_bind, METH_VARARGS, "bind(slot, context): the engine's mini-racer context id."},
    {"set_mailbox", handoff_set_mailbox, METH_VARARGS, "set_mailbox(slot, address, capacity)."},
    {"set_fd", handoff_set_fd, METH_VARARGS, "set_fd(slot, fd): the pipe SIGNAL records go to (-1: none)."},
    {"expect", handoff_expect, METH_VARARGS, "expect(slot, first[, last]): the runs SIGNALs may hand over, once each."},
    {"ended", handoff_ended, METH_VARARGS, "ended(slot): when the last SIGNAL handed over was made."},
    {"swap", handoff_swap, METH_VARARGS, "swap(address, expected, desired): an int32 compare-and-swap; what it held."},
    {"seal", handoff_seal, METH_VARARGS, "seal(slot): free no more values; returns once no free is under way."},
    {"close_slot", handoff_close_slot, METH_VARARGS, "close_slot(slot): its context is freed."},
    {"retire_fd", handoff_retire_fd, METH_VARARGS, "retire_fd(fd): no slot writes to fd any more."},
    {"take", handoff_take, METH_VARARGS, "take(copy, size): a record's mailbox copy as bytes, freed."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_handoff", NULL, -1, methods};

PyMODINIT_FUNC PyInit__handoff(void) {
    return PyModule_Create(&module);
}
