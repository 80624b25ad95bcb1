/*
 * The guest's ports: COM1 as far as the runtime uses it (templates/partials/serial.S.hbs polls LSR
 * before each byte and programs the divisor with DLAB set), QEMU's isa-debug-exit at 0xf4 and
 * Bochs' "Shutdown" port 0x8900 (batch.S.hbs rt_exit). Every other port reads as all ones and
 * ignores writes, as on a PC bus with nothing behind the address; those accesses are counted.
 * Pure: no KVM here; main.c hands in each access from KVM_EXIT_IO.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "vmm.h"

static const char SHUTDOWN[] = "Shutdown";

/* 16550 register offsets from the base (PC16550D data sheet, table 2) */
enum { RBR_THR_DLL = 0, IER_DLM = 1, IIR_FCR = 2, LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7 };

void io_init(struct io_state *io, int out_fd) {
  memset(io, 0, sizeof *io);
  io->out_fd = out_fd;
  io->dll = 1; /* whatever: the runtime sets it */
}

int io_flush(struct io_state *io) {
  size_t done = 0;
  while (done < io->nout) {
    ssize_t n = write(io->out_fd, io->out + done, io->nout - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    done += (size_t)n;
  }
  io->nout = 0;
  return 0;
}

static void com1_byte(struct io_state *io, uint8_t b) {
  io->out[io->nout++] = b;
  io->com1_bytes++;
  /* whole lines go out at once, so the runner's idle timer sees progress line by line */
  if (b == '\n' || io->nout == sizeof io->out) (void)io_flush(io);
}

static uint32_t uart_in(struct io_state *io, unsigned reg) {
  bool dlab = io->lcr & UART_LCR_DLAB;
  switch (reg) {
    case RBR_THR_DLL: return dlab ? io->dll : 0; /* nothing is ever received */
    case IER_DLM: return dlab ? io->dlm : io->ier;
    case IIR_FCR: return 0x01u | ((io->fcr & 1) ? 0xc0u : 0); /* no interrupt pending; FIFOs on if enabled */
    case LCR: return io->lcr;
    case MCR: return io->mcr;
    case LSR: return UART_LSR_THRE | UART_LSR_TEMT; /* every byte is sent at once */
    case MSR: return 0xb0u; /* DCD, DSR, CTS: a cable that is always ready */
    default: return io->scr;
  }
}

static void uart_out(struct io_state *io, unsigned reg, uint8_t v) {
  bool dlab = io->lcr & UART_LCR_DLAB;
  switch (reg) {
    case RBR_THR_DLL:
      if (dlab) io->dll = v;
      else com1_byte(io, v);
      break;
    case IER_DLM:
      if (dlab) io->dlm = v;
      else io->ier = v & 0x0f;
      break;
    case IIR_FCR: io->fcr = v; break;
    case LCR: io->lcr = v; break;
    case MCR: io->mcr = v & 0x1f; break;
    case LSR: case MSR: break; /* read-only in practice */
    default: io->scr = v;
  }
}

void io_port(struct io_state *io, uint16_t port, bool is_write, unsigned size, uint32_t *value) {
  if (port >= COM1_BASE && port < COM1_BASE + 8) {
    /* a wider access reaches consecutive registers; the runtime only uses bytes */
    for (unsigned i = 0; i < size && port + i < COM1_BASE + 8; i++) {
      unsigned reg = port + i - COM1_BASE;
      if (is_write) uart_out(io, reg, (uint8_t)(*value >> (8 * i)));
      else *value = (*value & ~(0xffu << (8 * i))) | (uart_in(io, reg) << (8 * i));
    }
    return;
  }
  if (port == DEBUG_EXIT_PORT && is_write) {
    io->end = GUEST_DEBUG_EXIT;
    io->exit_value = size == 4 ? *value : *value & ((1u << (8 * size)) - 1);
    return;
  }
  if (port == BOCHS_SHUTDOWN_PORT && is_write && size == 1) {
    char c = (char)*value;
    if (c == SHUTDOWN[io->shutdown_pos]) io->shutdown_pos++;
    else io->shutdown_pos = c == SHUTDOWN[0] ? 1 : 0;
    if (io->shutdown_pos == sizeof SHUTDOWN - 1) io->end = GUEST_SHUTDOWN_PORT;
    return;
  }
  io->other_port_accesses++;
  if (!is_write) *value = size == 4 ? 0xffffffffu : (1u << (8 * size)) - 1;
}
