/*
 * The Bochs backend's boot sector: Bochs has no multiboot loader, so the BIOS boots this sector
 * from a floppy image while `optramimage1` has already put the kernel's flat image at its link
 * address. The sector does what a multiboot v1 loader must (Multiboot Specification 0.6.96,
 * 3.2 "Machine state"): A20 on, 32-bit protected mode with flat 4 GiB code and data segments,
 * paging and interrupts off, EAX = 0x2BADB002, EBX = the multiboot information structure, and a
 * jump to the kernel's entry point.
 *
 * The runner (runner/backends/bochs.ts) assembles it once with offsets and memory sizes passed as
 * --defsym (their one place is that file), then patches each boot's entry point and command line
 * into the sector at ENTRY_OFF and CMDLINE_OFF.
 *
 * Symbols from --defsym: LOAD_ADDR (0x7c00, where the BIOS loads a boot sector), ENTRY_OFF,
 * CMDLINE_OFF, CMDLINE_END, MEM_LOWER_KB, MEM_UPPER_KB.
 */
	.set MB_BOOT_MAGIC, 0x2BADB002
	.set MB_INFO_MEMORY, 0x1            /* flags bit 0: mem_lower / mem_upper valid */
	.set MB_INFO_CMDLINE, 0x4           /* flags bit 2: cmdline valid */
	.set SEL_CODE32, 0x08
	.set SEL_DATA32, 0x10

	.text
	.code16
	.globl _start
_start:
	cli
	/* the BIOS may enter at 07c0:0000 or 0000:7c00: make CS 0 so label addresses hold */
	ljmp	$0, $1f
1:	xor	%ax, %ax
	mov	%ax, %ds
	mov	%ax, %ss
	mov	$LOAD_ADDR, %sp

	/* A20 through System Control Port A (port 0x92 bit 1); bit 0 would reset the machine */
	in	$0x92, %al
	or	$0x02, %al
	and	$0xfe, %al
	out	%al, $0x92

	/* protected mode: CR0.PE, then a far jump to load a 32-bit CS (APM vol. 2 14.4) */
	lgdtl	gdt_desc
	mov	%cr0, %eax
	or	$1, %eax
	mov	%eax, %cr0
	ljmpl	$SEL_CODE32, $pm32

	.code32
pm32:
	mov	$SEL_DATA32, %eax
	mov	%eax, %ds
	mov	%eax, %es
	mov	%eax, %fs
	mov	%eax, %gs
	mov	%eax, %ss
	mov	$MB_BOOT_MAGIC, %eax
	mov	$mbi, %ebx
	jmp	*entry

	.balign 8
gdt:
	.quad 0
	.quad 0x00cf9a000000ffff            /* 0x08: code, 4 GiB, 32-bit, DPL 0 */
	.quad 0x00cf92000000ffff            /* 0x10: data, 4 GiB, read/write */
gdt_desc:
	.word gdt_desc - gdt - 1
	.long gdt

	/* multiboot information: only the fields before cmdline are meaningful here (flags say so) */
	.balign 4
mbi:
	.long MB_INFO_MEMORY | MB_INFO_CMDLINE
	.long MEM_LOWER_KB
	.long MEM_UPPER_KB
	.long 0                             /* boot_device: not valid (flags bit 1 clear) */
	.long cmdline

	.org ENTRY_OFF
entry:
	.long 0                             /* patched: the kernel's ELF entry point */

	.org CMDLINE_OFF
cmdline:
	.fill CMDLINE_END - CMDLINE_OFF, 1, 0   /* patched: NUL-terminated command line */

	.org 510
	.word 0xaa55                        /* boot signature */
