// bitmix virtual board: the FPGA top under Verilator, its host link bridged to a pseudo-terminal.
// Built by verif/sim_board/__init__.py (see its docstring for the design); "board_config.h",
// generated next to this file, includes the Verilated top as `Top` and sets LINK_UART.
//
// Events and statistics go to stdout as one JSON object per line:
//   {"event": "ready", "device": "/dev/pts/N", ...}      once, when the pty is open
//   {"event": "stats", ...}                               on SIGUSR1 and every --report seconds
//   {"event": "mark", ...}                                on SIGUSR2: a measurement window starts
//   {"event": "exit", "reason": ..., ...}                 at shutdown
#include "board_config.h"
#include "verilated.h"

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fcntl.h>
#include <poll.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif
#include <string>
#include <termios.h>
#include <ctime>
#include <unistd.h>
#include <vector>

static volatile sig_atomic_t g_stop = 0, g_report = 0, g_mark = 0;
static void on_stop(int sig) { g_stop = sig; }
static void on_report(int) { g_report = 1; }
static void on_mark(int) { g_mark = 1; }

// Cycles simulated between two looks at the pty (and at the signal flags).
static const int CHUNK = 512;
// Host->device bytes kept buffered; device->host bytes before the byte link stops taking them.
static const size_t IN_CAP = 1 << 20, OUT_CAP = 1 << 16;

static double cpu_now() {
    timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

struct Stats {
    uint64_t cycles = 0, rx_bytes = 0, tx_bytes = 0, rx_frames = 0, tx_frames = 0;
    uint64_t tx_framing_errors = 0, out_dropped = 0, connects = 0;
    uint64_t rt_count = 0, rt_min = ~0ull, rt_max = 0, rt_sum = 0, rt_last = 0;
    uint64_t busy_cycles = 0;  // cycles simulated while bytes were pending or the link was busy
    // window since the last mark (SIGUSR2): first host byte in, last device byte out
    uint64_t win_first_rx = 0, win_last_tx = 0, win_rx_bytes = 0, win_tx_bytes = 0;
    bool win_started = false;
    double sim_seconds = 0;    // wall time spent ticking the clock
};

struct Board {
    Top* top;
    int master = -1, hold = -1;  // pty master; our own slave fd while no client is attached
    std::string device;
    bool connected = false, persist = false;
    std::vector<uint8_t> in;  // host -> device
    size_t in_head = 0;
    std::vector<uint8_t> out;  // device -> host
    Stats st;
    double clk_hz = 12e6;
    uint64_t divisor = 0, idle_after = 1 << 22, last_activity = 0;
    // round trip: cycle the first byte of a request entered the device -> last response byte left
    std::deque<uint64_t> req_start;
    bool rx_in_frame = false;
    uint64_t rx_frame_start = 0;
    bool tx_prev_zero = true;
    // UART model state (LINK_UART): the host's transmitter on rx, its receiver on tx
    uint32_t rx_shift = 0;
    int rx_bits = 0;
    uint64_t rx_count = 0;
    int tx_bit = -1;
    uint64_t tx_count = 0;
    uint32_t tx_shift = 0;

    size_t pending() const { return in.size() - in_head; }

    void took_rx(uint8_t b, uint64_t start) {
        st.rx_bytes++;
        st.win_rx_bytes++;
        if (!st.win_started) { st.win_started = true; st.win_first_rx = start; }
        if (b != 0 && !rx_in_frame) { rx_in_frame = true; rx_frame_start = start; }
        if (b == 0 && rx_in_frame) { rx_in_frame = false; st.rx_frames++; req_start.push_back(rx_frame_start); }
        if (req_start.size() > 4096) req_start.pop_front();
    }
    void put_tx(uint8_t b) {
        st.tx_bytes++;
        st.win_tx_bytes++;
        st.win_last_tx = st.cycles + 1;
        if (out.size() < IN_CAP) out.push_back(b); else st.out_dropped++;
        if (b == 0 && !tx_prev_zero) {
            st.tx_frames++;
            if (!req_start.empty()) {
                uint64_t rt = st.cycles + 1 - req_start.front();
                req_start.pop_front();
                st.rt_count++; st.rt_sum += rt; st.rt_last = rt;
                if (rt < st.rt_min) st.rt_min = rt;
                if (rt > st.rt_max) st.rt_max = rt;
            }
        }
        tx_prev_zero = b == 0;
    }

    bool link_busy() const {
#if LINK_UART
        return rx_bits > 0 || tx_bit >= 0 || !top->tx;
#else
        return top->tx_byte___05Fvalid;
#endif
    }

    // One clock cycle: inputs set while clk is low, outputs sampled after the low-phase eval
    // (combinational handshakes settle), then the rising edge.
    inline void tick() {
        top->clk = 0;
#if LINK_UART
        if (rx_bits == 0 && in_head < in.size()) {  // next byte: start bit, 8 data bits, stop bit
            rx_shift = ((uint32_t)in[in_head] << 1) | (1u << 9);
            rx_bits = 10; rx_count = divisor;
            took_rx(in[in_head], st.cycles);
            in_head++;
        }
        top->rx = rx_bits ? (rx_shift & 1) : 1;
        top->eval();
        if (rx_bits && --rx_count == 0) { rx_shift >>= 1; rx_bits--; rx_count = divisor; }
        // receiver: falling edge starts a byte; sample each bit in its middle
        if (tx_bit < 0) {
            if (!top->tx) { tx_bit = 0; tx_count = divisor / 2; tx_shift = 0; }
        } else if (--tx_count == 0) {
            int v = top->tx;
            if (tx_bit == 0) {
                if (v) tx_bit = -1; else { tx_bit = 1; tx_count = divisor; }  // glitch: no start bit
            } else if (tx_bit <= 8) {
                tx_shift |= (uint32_t)v << (tx_bit - 1); tx_bit++; tx_count = divisor;
            } else {
                if (v) put_tx((uint8_t)tx_shift); else st.tx_framing_errors++;
                tx_bit = -1;
            }
        }
#else
        bool have = in_head < in.size();
        top->rx_byte___05Fvalid = have;
        if (have) top->rx_byte___05Fpayload = in[in_head];
        top->tx_byte___05Fready = out.size() < OUT_CAP;
        top->eval();
        if (have && top->rx_byte___05Fready) { took_rx(in[in_head], st.cycles); in_head++; }
        if (top->tx_byte___05Fvalid && top->tx_byte___05Fready) put_tx(top->tx_byte___05Fpayload);
#endif
        top->clk = 1;
        top->eval();
        st.cycles++;
    }

    void open_pty() {
        master = posix_openpt(O_RDWR | O_NOCTTY);
        if (master < 0 || grantpt(master) || unlockpt(master)) { perror("posix_openpt"); exit(3); }
        device = ptsname(master);
        hold_slave();
        fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
    }
    // Keep the slave open ourselves while no client is attached: without any slave open the
    // master reports a hangup on every poll, and we could not sleep on it.
    void hold_slave() {
        hold = open(device.c_str(), O_RDWR | O_NOCTTY);
        if (hold < 0) { perror("open pty slave"); exit(3); }
        termios t;
        tcgetattr(hold, &t);
        cfmakeraw(&t);
        tcsetattr(hold, TCSANOW, &t);
    }

    // Move bytes between the pty and the buffers. Returns false when the client hung up and the
    // board should stop.
    bool io() {
        if (in_head == in.size()) { in.clear(); in_head = 0; }
        else if (in_head > (1 << 16)) { in.erase(in.begin(), in.begin() + in_head); in_head = 0; }
        if (pending() < IN_CAP) {
            uint8_t buf[65536];
            ssize_t n = read(master, buf, sizeof buf);
            if (n > 0) {
                in.insert(in.end(), buf, buf + n);
                if (!connected) {  // a client is attached: from now on its close is a hangup
                    connected = true; st.connects++;
                    if (hold >= 0) { close(hold); hold = -1; }
                }
            } else if (n < 0 && errno == EIO) {
                return hangup();
            }
        }
        if (!out.empty()) {
            ssize_t n = write(master, out.data(), out.size());
            if (n > 0) out.erase(out.begin(), out.begin() + n);
            else if (n < 0 && errno == EIO) return hangup();
        }
        return true;
    }

    bool hangup() {
        connected = false;
        in.clear(); in_head = 0; out.clear();
        if (!persist) return false;
        hold_slave();  // wait for the next client
        return true;
    }

    // Sleep until the client sends something, it hangs up, or a signal / report is due.
    bool wait_idle(int ms) {
        req_start.clear();  // a request that got no answer (a dropped frame) has none coming
        rx_in_frame = false;
        pollfd p = {master, POLLIN, 0};
        int r = poll(&p, 1, ms);
        if (r > 0 && (p.revents & POLLHUP) && connected) return hangup();
        return true;
    }

    void print(const char* event, const char* reason = nullptr) {
        double rt_mean = st.rt_count ? (double)st.rt_sum / st.rt_count : 0;
        printf("{\"event\": \"%s\", ", event);
        if (reason) printf("\"reason\": \"%s\", ", reason);
        printf("\"device\": \"%s\", \"link\": \"%s\", \"clk_hz\": %.0f, \"divisor\": %llu, "
               "\"cycles\": %llu, \"busy_cycles\": %llu, \"sim_seconds\": %.6f, "
               "\"cycles_per_second\": %.0f, \"cpu_seconds\": %.3f, \"cycles_per_cpu_second\": %.0f, "
               "\"rx_bytes\": %llu, \"tx_bytes\": %llu, "
               "\"rx_frames\": %llu, \"tx_frames\": %llu, \"tx_framing_errors\": %llu, "
               "\"out_dropped\": %llu, \"connects\": %llu, \"round_trips\": %llu, "
               "\"round_trip_cycles_min\": %llu, \"round_trip_cycles_mean\": %.1f, "
               "\"round_trip_cycles_max\": %llu, \"round_trip_cycles_last\": %llu, "
               "\"window_first_rx_cycle\": %llu, \"window_last_tx_cycle\": %llu, "
               "\"window_rx_bytes\": %llu, \"window_tx_bytes\": %llu, "
               "\"connected\": %s, \"pid\": %d}\n",
               device.c_str(), LINK_UART ? "uart" : "bytes", clk_hz, (unsigned long long)divisor,
               (unsigned long long)st.cycles, (unsigned long long)st.busy_cycles, st.sim_seconds,
               st.sim_seconds > 0 ? st.cycles / st.sim_seconds : 0.0, cpu_now(),
               cpu_now() > 0 ? st.cycles / cpu_now() : 0.0,
               (unsigned long long)st.rx_bytes, (unsigned long long)st.tx_bytes,
               (unsigned long long)st.rx_frames, (unsigned long long)st.tx_frames,
               (unsigned long long)st.tx_framing_errors, (unsigned long long)st.out_dropped,
               (unsigned long long)st.connects, (unsigned long long)st.rt_count,
               (unsigned long long)(st.rt_count ? st.rt_min : 0), rt_mean,
               (unsigned long long)st.rt_max, (unsigned long long)st.rt_last,
               (unsigned long long)st.win_first_rx, (unsigned long long)st.win_last_tx,
               (unsigned long long)st.win_rx_bytes, (unsigned long long)st.win_tx_bytes,
               connected ? "true" : "false", (int)getpid());
        fflush(stdout);
    }
};

static void usage(const char* argv0) {
    fprintf(stderr, "usage: %s [--clk-hz F] [--divisor N] [--idle-after CYCLES] [--max-cycles N] "
                    "[--report SECONDS] [--persist]\n", argv0);
    exit(2);
}

int main(int argc, char** argv) {
    Board b;
    uint64_t max_cycles = 0;
    double report = 0;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        auto next = [&]() -> const char* { if (i + 1 >= argc) usage(argv[0]); return argv[++i]; };
        if (a == "--clk-hz") b.clk_hz = atof(next());
        else if (a == "--divisor") b.divisor = strtoull(next(), nullptr, 0);
        else if (a == "--idle-after") b.idle_after = strtoull(next(), nullptr, 0);
        else if (a == "--max-cycles") max_cycles = strtoull(next(), nullptr, 0);
        else if (a == "--report") report = atof(next());
        else if (a == "--persist") b.persist = true;
        else usage(argv[0]);
    }
#if LINK_UART
    if (b.divisor < 4) { fprintf(stderr, "--divisor must be >= 4 in UART mode\n"); return 2; }
#endif
#ifdef __linux__
    prctl(PR_SET_PDEATHSIG, SIGTERM);  // never outlive the launcher
#endif
    struct sigaction sa = {};
    sa.sa_handler = on_stop;
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGHUP, &sa, nullptr);
    sa.sa_handler = on_report;
    sigaction(SIGUSR1, &sa, nullptr);
    sa.sa_handler = on_mark;
    sigaction(SIGUSR2, &sa, nullptr);
    signal(SIGPIPE, SIG_IGN);

    Verilated::commandArgs(1, argv);
    b.top = new Top;
    b.top->clk = 0;
#if LINK_UART
    b.top->rx = 1;
#else
    b.top->rx_byte___05Fvalid = 0; b.top->tx_byte___05Fready = 1;
#endif
    // the reset is generated inside (verif/sim_board PowerOnReset): 4 cycles
    for (int i = 0; i < 4; i++) { b.top->clk = 0; b.top->eval(); b.top->clk = 1; b.top->eval(); }
    b.open_pty();
    b.print("ready");

    const char* reason = "signal";
    auto last_report = std::chrono::steady_clock::now();
    for (;;) {
        if (g_stop) break;
        if (g_mark) {  // start a measurement window; round-trip statistics restart too
            g_mark = 0;
            b.st.win_started = false; b.st.win_rx_bytes = b.st.win_tx_bytes = 0;
            b.st.win_first_rx = b.st.win_last_tx = b.st.cycles;
            b.st.rt_count = b.st.rt_sum = b.st.rt_max = b.st.rt_last = 0; b.st.rt_min = ~0ull;
            b.print("mark");
        }
        if (g_report) { g_report = 0; b.print("stats"); }
        if (report > 0) {
            auto now = std::chrono::steady_clock::now();
            if (std::chrono::duration<double>(now - last_report).count() >= report) {
                last_report = now; b.print("stats");
            }
        }
        if (!b.io()) { reason = "hangup"; break; }
        if (max_cycles && b.st.cycles >= max_cycles) { reason = "max-cycles"; break; }
        bool active = b.pending() || !b.out.empty() || b.link_busy();
        if (active) b.last_activity = b.st.cycles;
        else if (b.st.cycles - b.last_activity >= b.idle_after) {
            // Nothing to send or receive for idle_after cycles: stop the clock until the host
            // writes (simulated time does not pass while the board sleeps).
            if (!b.wait_idle(report > 0 ? 50 : 200)) { reason = "hangup"; break; }
            continue;
        }
        auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < CHUNK; i++) b.tick();
        if (active) b.st.busy_cycles += CHUNK;
        b.st.sim_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
    b.print("exit", reason);
    b.top->final();
    delete b.top;
    return 0;
}
