/*
 * The Bochs backend's boot sector: Bochs has no multiboot loader, so the BIOS boots this sector
 * from a floppy image whose next sectors hold the kernel's flat image. The sector reads them with
 * the BIOS (INT 13h) into conventional memory, then does what a multiboot v1 loader must
 * (Multiboot Specification 0.6.96, 3.2 "Machine state"): A20 on, 32-bit protected mode with flat
 * 4 GiB code and data segments, paging and interrupts off, the image copied to its link address,
 * EAX = 0x2BADB002, EBX = the multiboot information structure, and a jump to the entry point.
 *
 * Why not Bochs' `optramimage1` (which 2.7 honours): from Bochs 3.1 it applies the A20 mask of a
 * machine not yet reset, so every page of the image lands on page 0 (docs/backends/bochs.md).
 *
 * The runner (runner/backends/bochs.ts) assembles it once with offsets and sizes passed as
 * --defsym (their one place is that file), then patches each boot's entry point, image size in
 * sectors and command line into the sector at ENTRY_OFF, SECTORS_OFF and CMDLINE_OFF.
 *
 * Symbols from --defsym: LOAD_ADDR (0x7c00, where the BIOS loads a boot sector), ENTRY_OFF,
 * SECTORS_OFF, CMDLINE_OFF, CMDLINE_END, MEM_LOWER_KB, MEM_UPPER_KB, BUF_SEG (the real-mode
 * segment the image is read to), KERNEL_LOAD_ADDR, FLOPPY_SPT (sectors per track) and
 * FLOPPY_HEADS of the floppy's geometry.
 */
	.set MB_BOOT_MAGIC, 0x2BADB002
	.set MB_INFO_MEMORY, 0x1            /* flags bit 0: mem_lower / mem_upper valid */
	.set MB_INFO_CMDLINE, 0x4           /* flags bit 2: cmdline valid */
	.set SEL_CODE32, 0x08
	.set SEL_DATA32, 0x10
	.set SECTOR_PARAS, 512 / 16         /* one sector in real-mode paragraphs */

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
	mov	%dl, drive                  /* the BIOS passes the boot drive in DL */

	/*
	 * The image: `sectors` sectors from LBA 1, one INT 13h AH=02h read per sector (a sector
	 * never crosses a 64 KiB DMA boundary) to BUF_SEG:0 onwards. CHS from the LBA:
	 * track = LBA / SPT, sector = LBA % SPT + 1, cylinder = track / HEADS, head = track % HEADS.
	 */
	mov	$BUF_SEG, %ax
	mov	%ax, %es
	mov	$1, %si
	mov	sectors, %di
read:
	test	%di, %di
	jz	loaded
	mov	%si, %ax
	mov	$FLOPPY_SPT, %bl
	div	%bl                         /* AL = track, AH = sector index */
	mov	%ah, %cl
	inc	%cl
	xor	%ah, %ah
	mov	$FLOPPY_HEADS, %bl
	div	%bl                         /* AL = cylinder, AH = head */
	mov	%al, %ch
	mov	%ah, %dh
	mov	drive, %dl
	xor	%bx, %bx
	mov	$0x0201, %ax                /* AH = 02h read, AL = 1 sector, to ES:BX */
	int	$0x13
	jc	failed
	mov	%es, %ax
	add	$SECTOR_PARAS, %ax
	mov	%ax, %es
	inc	%si
	dec	%di
	jmp	read
failed:
	int	$0x18                       /* boot failure: the BIOS reports it (Bochs panics) */

loaded:
	/* the BIOS's disk service may return with IF set: no interrupt from here on (Multiboot 3.2) */
	cli
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
	/* the image to its link address, as a multiboot loader places it */
	mov	$BUF_SEG * 16, %esi
	mov	$KERNEL_LOAD_ADDR, %edi
	movzwl	sectors, %ecx
	shl	$7, %ecx                    /* 128 dwords a sector */
	cld
	rep movsl
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

drive:
	.byte 0

	.org SECTORS_OFF
sectors:
	.word 0                             /* patched: sectors of the flat image after this one */

	.org ENTRY_OFF
entry:
	.long 0                             /* patched: the kernel's ELF entry point */

	.org CMDLINE_OFF
cmdline:
	.fill CMDLINE_END - CMDLINE_OFF, 1, 0   /* patched: NUL-terminated command line */

	.org 510
	.word 0xaa55                        /* boot signature */
