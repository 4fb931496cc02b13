/* The runner's spawn on Linux: posix_spawn's vfork-style clone, with the child born in a cgroup.
 *
 * posix_spawn cannot place its child in a cgroup (glibc's posix_spawnattr_setcgroup_np comes
 * with 2.39), and a job that moves itself there waits in the kernel for the migration. clone3's
 * CLONE_INTO_CGROUP (Linux 5.7) makes the child a member from birth. It is done the way the C
 * library does it: CLONE_VM | CLONE_VFORK, the parent suspended until the child has exec'd (or
 * failed to), so nothing of the parent runs meanwhile and no page is copied. A fork-style clone
 * would not wait for the exec, but copying the runner's page tables and the copy-on-write faults
 * after it cost the runner more than the wait.
 *
 * The child shares the parent's memory and stack: the clone3 system call is issued inline (no
 * return address of a wrapper to lose), and the child goes on in a function of its own, below
 * the parent's frame, calling only async-signal-safe functions until execve or _exit.
 */

#define _GNU_SOURCE
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#ifndef __linux__
#error "clone3 is Linux's"
#endif

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sched.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_clone3
#define SYS_clone3 435 /* the same number on every architecture */
#endif

#define INTO_CGROUP 0x200000000ULL /* CLONE_INTO_CGROUP */

/* The kernel's struct clone_args up to its `cgroup` field (the size tells the kernel which). */
struct spawn_clone_args {
    uint64_t flags;
    uint64_t pidfd;
    uint64_t child_tid;
    uint64_t parent_tid;
    uint64_t exit_signal;
    uint64_t stack;
    uint64_t stack_size;
    uint64_t tls;
    uint64_t set_tid;
    uint64_t set_tid_size;
    uint64_t cgroup;
};

/* A NULL-terminated array of the file-system encodings of a sequence's items. */
typedef struct {
    char **items;
    PyObject **owners; /* the bytes objects that hold the strings */
    Py_ssize_t count;
} Strings;

static void strings_free(Strings *s) {
    if (s->owners != NULL) {
        for (Py_ssize_t i = 0; i < s->count; i++) {
            Py_XDECREF(s->owners[i]);
        }
    }
    PyMem_Free(s->owners);
    PyMem_Free(s->items);
    s->items = NULL;
    s->owners = NULL;
    s->count = 0;
}

static int strings_from(PyObject *sequence, Strings *s, const char *what) {
    PyObject *fast = PySequence_Fast(sequence, what);
    if (fast == NULL) {
        return -1;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    s->count = 0;
    s->items = PyMem_Calloc((size_t)n + 1, sizeof(char *));
    s->owners = PyMem_Calloc((size_t)n + 1, sizeof(PyObject *));
    if (s->items == NULL || s->owners == NULL) {
        Py_DECREF(fast);
        strings_free(s);
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *encoded = NULL;
        if (!PyUnicode_FSConverter(PySequence_Fast_GET_ITEM(fast, i), &encoded)) {
            Py_DECREF(fast);
            strings_free(s);
            return -1;
        }
        s->owners[i] = encoded;
        s->items[i] = PyBytes_AS_STRING(encoded);
        s->count = i + 1;
    }
    Py_DECREF(fast);
    return 0;
}

/* What the child needs, in the parent's memory (shared with the child until its exec). */
typedef struct {
    const char *path;
    char **argv;
    char **envp;
    int streams[3];
    const int *defaults;
    int ndefaults;
    volatile int error; /* the child's errno, if it could not exec */
} Child;

/* clone3 issued inline: with CLONE_VM and no stack of its own, the child runs on the parent's
 * stack, and a wrapper function's return address there would be overwritten by the child's
 * first call before the parent returned through it. */
static inline __attribute__((always_inline)) long clone3_inline(struct spawn_clone_args *args) {
#if defined(__x86_64__)
    long result;
    __asm__ volatile("syscall"
                     : "=a"(result)
                     : "0"((long)SYS_clone3), "D"(args), "S"(sizeof(*args))
                     : "rcx", "r11", "memory");
    return result;
#elif defined(__aarch64__)
    register long x8 __asm__("x8") = SYS_clone3;
    register long x0 __asm__("x0") = (long)args;
    register long x1 __asm__("x1") = (long)sizeof(*args);
    __asm__ volatile("svc #0" : "+r"(x0) : "r"(x8), "r"(x1) : "memory");
    return x0;
#else
#error "no inline clone3 for this architecture: the runner uses posix_spawn"
#endif
}

/* The child, from clone3 to execve: async-signal-safe calls only, and never a return. */
static __attribute__((noinline, noreturn)) void child(Child *c) {
    sigset_t none;
    struct sigaction plain;

    if (setsid() < 0) {
        goto failed;
    }
    for (int target = 0; target < 3; target++) {
        if (c->streams[target] == target) {
            /* dup2 onto itself would keep close-on-exec: clear it instead */
            if (fcntl(target, F_SETFD, 0) < 0) {
                goto failed;
            }
        } else if (dup2(c->streams[target], target) < 0) {
            goto failed;
        }
    }
    /* A handler of the runner's must not run in the child. Signals the runner ignores stay
     * ignored, as across posix_spawn, but for those it must not pass on (SIGPIPE, SIGXFSZ). */
    memset(&plain, 0, sizeof(plain));
    plain.sa_handler = SIG_DFL;
    sigemptyset(&plain.sa_mask);
    for (int signum = 1; signum < NSIG; signum++) {
        struct sigaction current;
        int reset = 0;
        if (signum == SIGKILL || signum == SIGSTOP) {
            continue;
        }
        for (int i = 0; i < c->ndefaults; i++) {
            reset |= c->defaults[i] == signum;
        }
        if (sigaction(signum, NULL, &current) != 0) {
            continue; /* one the C library keeps for itself */
        }
        if (reset || (current.sa_handler != SIG_IGN && current.sa_handler != SIG_DFL)) {
            sigaction(signum, &plain, NULL);
        }
    }
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execve(c->path, c->argv, c->envp);
failed:
    c->error = errno ? errno : ECHILD;
    _exit(127);
}

PyDoc_STRVAR(spawn_doc,
"spawn(path, argv, env, stdin, stdout, stderr, cgroup, default_signals) -> pid\n\n"
"Start `path` with `argv` and `env` (a sequence of 'NAME=value') in a session of its own,\n"
"its standard streams from these descriptors and `default_signals` at their defaults;\n"
"born in the cgroup whose directory `cgroup` is open on (-1: the caller's). OSError when\n"
"clone3 fails or the child could not exec.");

static PyObject *spawn(PyObject *module, PyObject *args) {
    PyObject *path_arg, *argv_arg, *env_arg, *signals_arg, *path = NULL, *fast_signals = NULL;
    int cgroup;
    Strings argv = {0}, envp = {0};
    int defaults[64];
    Child c;
    struct spawn_clone_args clone_args;
    sigset_t all, old;
    long pid;
    int error;

    (void)module;
    memset(&c, 0, sizeof(c));
    if (!PyArg_ParseTuple(args, "OOOiiiiO:spawn", &path_arg, &argv_arg, &env_arg, &c.streams[0],
                          &c.streams[1], &c.streams[2], &cgroup, &signals_arg)) {
        return NULL;
    }
    if (!PyUnicode_FSConverter(path_arg, &path)) {
        return NULL;
    }
    fast_signals = PySequence_Fast(signals_arg, "default_signals must be a sequence");
    if (fast_signals == NULL) {
        goto fail;
    }
    if (PySequence_Fast_GET_SIZE(fast_signals) > (Py_ssize_t)(sizeof(defaults) / sizeof(int))) {
        PyErr_SetString(PyExc_ValueError, "too many default_signals");
        goto fail;
    }
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(fast_signals); i++) {
        long signum = PyLong_AsLong(PySequence_Fast_GET_ITEM(fast_signals, i));
        if (signum == -1 && PyErr_Occurred()) {
            goto fail;
        }
        defaults[c.ndefaults++] = (int)signum;
    }
    if (strings_from(argv_arg, &argv, "argv must be a sequence") < 0 ||
        strings_from(env_arg, &envp, "env must be a sequence") < 0) {
        goto fail;
    }
    c.path = PyBytes_AS_STRING(path);
    c.argv = argv.items;
    c.envp = envp.items;
    c.defaults = defaults;

    memset(&clone_args, 0, sizeof(clone_args));
    clone_args.flags = CLONE_VM | CLONE_VFORK;
    clone_args.exit_signal = SIGCHLD;
    if (cgroup >= 0) {
        clone_args.flags |= INTO_CGROUP;
        clone_args.cgroup = (uint64_t)cgroup;
    }
    /* No signal may reach the child before it has put the runner's handlers away. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid = clone3_inline(&clone_args);
    if (pid == 0) {
        child(&c);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (pid < 0) {
        errno = (int)-pid;
        PyErr_SetFromErrno(PyExc_OSError);
        goto fail;
    }
    error = c.error;
    if (error != 0) {
        /* it has exited (the parent resumes at its _exit): reap it, and say why */
        while (waitpid((pid_t)pid, NULL, 0) < 0 && errno == EINTR) {
        }
        errno = error;
        PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, path_arg);
        goto fail;
    }
    Py_DECREF(path);
    Py_DECREF(fast_signals);
    strings_free(&argv);
    strings_free(&envp);
    return PyLong_FromLong(pid);

fail:
    Py_XDECREF(path);
    Py_XDECREF(fast_signals);
    strings_free(&argv);
    strings_free(&envp);
    return NULL;
}

static PyMethodDef methods[] = {
    {"spawn", spawn, METH_VARARGS, spawn_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_spawn", "posix_spawn's clone, into a cgroup (Linux).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__spawn(void) { return PyModule_Create(&module_def); }
