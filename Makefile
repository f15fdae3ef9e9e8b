# Build, boot and test the kernel. `make run` and `make test` install what they need
# (the pinned Rust toolchain and target, QEMU, GRUB tools for the ISO) and say so.

TARGET    := x86_64-unknown-none
PROFILE   := release
# cargo's output directory: CARGO_TARGET_DIR when set (the harness reads it too), else target/.
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)
OUT       := $(TARGET_DIR)/$(TARGET)/$(PROFILE)
BUILD     := build
QEMU      := qemu-system-x86_64
MEM       ?= 256M
IOMMU     ?= intel-iommu,intremap=on
APPEND    ?=
# UEFI firmware for `make run-uefi` and the UEFI scenario (Debian's ovmf).
OVMF      ?= /usr/share/ovmf/OVMF.fd
SUDO      := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
QEMU_ARGS := -machine q35 -accel tcg -cpu max -m $(MEM) -smp 1 -display none \
             -monitor none -serial stdio -no-reboot \
             -device isa-debug-exit,iobase=0xf4,iosize=0x04 -device $(IOMMU)
# The bare-metal user programs: built for $(TARGET) only, so host-side runs exclude them.
USER_PROGRAMS := root fault captest ipctest irqtest bench fuzz dmatest edu cputest vmm vmattack hello crasher iommutest nvmedrv virtionetdrv e1000edrv netclient blkclient httpd bridge udpecho netbench
# The components of composed systems besides the iommu-server (docs/system.md): packages
# built for $(TARGET) only, and every program they make (packed by name; one program per
# driver mode, and the server's malicious mode, for the scenarios in tests/tests/system.rs).
COMPONENT_PACKAGES := edudrv management relay
COMPONENTS    := management management-busy management-thief management-restart-server management-restart-loop \
                 edudrv edudrv-rogue-outside edudrv-rogue-targets edudrv-rogue-device edudrv-use-freed edudrv-crash \
                 edudrv-storm edudrv-flood edudrv-stale edudrv-leak edudrv-keeper edudrv-keeper-flip edudrv-hog edudrv-outlive edudrv-giver edudrv-block \
                 e1000edrv-rogue e1000edrv-loopback e1000edrv-flaky e1000edrv-blast nvmedrv-rogue \
                 virtionetdrv-rogue netclient-bench netclient-rxbench nvmedrv-bench \
                 iommu-server-malicious filter copier netbench-http crasher-sharewait crasher-spoof crasher-com1 netclient-flood netclient-arpspoof vmm-edu vmm-bench vmm-fuzz vmm-two-edu vmm-component vmattack-cr8
HOST_ONLY     := --workspace $(addprefix --exclude ,$(USER_PROGRAMS) $(COMPONENT_PACKAGES))
# Bare-metal programs whose crate also holds host-tested logic (a lib): built and packed
# like USER_PROGRAMS, but host-side runs keep them (their bin builds a stub on the host).
HOST_TESTED_PROGRAMS := iommu-server
# The system description `make image` checks and packs (systems/$(SYSTEM).toml; docs/system.md).
SYSTEM        ?= appliance
# No source file may grow past this many lines (`make check`).
MAX_LINES     := 800

.PHONY: all toolchain qemu-deps iso-deps chromium-deps graph-deps graph graph-log proofs-deps proofs image iso run run-iso run-uefi test check bench gdb clean fuzz fuzz-qemu soak
comma := ,

all: image

# cargo does not add rust-toolchain.toml's targets by itself here.
toolchain:
	@if ! rustup target list --installed 2>/dev/null | grep -qx '$(TARGET)'; then \
	    echo "make: installing the pinned Rust toolchain and the $(TARGET) target (rustup toolchain install)"; \
	    rustup toolchain install; \
	fi

# apt-get update runs once (stamp in build/), then only missing packages are installed.
define apt_install
	@mkdir -p $(BUILD)
	@if [ ! -f $(BUILD)/.apt-updated ]; then echo "make: apt-get update"; $(SUDO) apt-get update -qq && touch $(BUILD)/.apt-updated; fi
	@echo "make: installing $(1) (apt-get)"
	@DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(1) >/dev/null
endef

qemu-deps:
	@command -v $(QEMU) >/dev/null 2>&1 || { $(MAKE) --no-print-directory _install PKGS="qemu-system-x86"; }

# grub-pc-bin and grub-efi-amd64-bin make the ISO hybrid (BIOS and UEFI); mtools builds
# its EFI system partition; ovmf is the UEFI firmware `make test` boots it with.
iso-deps:
	@{ command -v grub-mkrescue >/dev/null 2>&1 && [ -d /usr/lib/grub/i386-pc ] && [ -d /usr/lib/grub/x86_64-efi ] \
	    && command -v xorriso >/dev/null 2>&1 && command -v mformat >/dev/null 2>&1 && [ -f $(OVMF) ]; } \
	    || { $(MAKE) --no-print-directory _install PKGS="grub-common grub-pc-bin grub-efi-amd64-bin xorriso mtools ovmf"; }

# Headless Chromium (Debian's chromium) for the status-page test, which loads the
# appliance's page through the forwarded port (tests/tests/status_page.rs).
chromium-deps:
	@command -v chromium >/dev/null 2>&1 || { $(MAKE) --no-print-directory _install PKGS="chromium"; }

# Graphviz for `make graph`.
graph-deps:
	@command -v dot >/dev/null 2>&1 || { $(MAKE) --no-print-directory _install PKGS="graphviz"; }

# Coq 8.16 and stdpp for the proofs (Debian's coq, libcoq-stdpp), installed like QEMU:
# apt-get update once (stamp in build/), then apt-get install -y.
proofs-deps:
	@{ command -v coqc >/dev/null 2>&1 && [ -d "$$(coqc -where 2>/dev/null)/user-contrib/stdpp" ]; } \
	    || { $(MAKE) --no-print-directory _install PKGS="coq libcoq-stdpp"; }

# The Coq model of caps and VT-d and its theorems (proofs/README.md): builds them, checks
# that nothing is admitted or assumed (Print Assumptions), runs the model mutants; then
# the spec's name check, the differential tests (PROOFS_SEQUENCES, default 1000) and the
# kernel and spec mutants.
proofs: proofs-deps toolchain
	@proofs/check.sh

.PHONY: _install
_install:
	$(call apt_install,$(PKGS))

# The kernel ELF (PVH + multiboot2 entry), the boot image (user programs + manifest) and
# build/system.elf: the kernel with the boot image packed in as a load segment at 16 MiB
# (what the ISO and the scenarios boot: the root task's checks; docs/boot.md), and
# build/$(SYSTEM).elf: the same plus the packed description as entry `system`, so the
# root task goes on as init and builds the composed system (what `run` boots).
image: toolchain
	cargo build --profile $(PROFILE) --target $(TARGET) -p kernel --bin kernel
	cargo build --profile $(PROFILE) --target $(TARGET) $(addprefix -p ,$(USER_PROGRAMS) $(HOST_TESTED_PROGRAMS) $(COMPONENT_PACKAGES))
	cargo build --profile $(PROFILE) -p scenarios --bin mkbootimg --bin mksystem --bin mksys
	@mkdir -p $(BUILD)
	cp $(OUT)/kernel $(BUILD)/kernel.elf
	$(TARGET_DIR)/$(PROFILE)/mksys systems/$(SYSTEM).toml -o $(BUILD)/$(SYSTEM).sys \
	    --programs "$(strip $(USER_PROGRAMS) $(HOST_TESTED_PROGRAMS) $(COMPONENTS))"
	$(TARGET_DIR)/$(PROFILE)/mkbootimg -o $(BUILD)/boot.img manifest=userland/manifest.txt \
	    $(foreach p,$(USER_PROGRAMS) $(HOST_TESTED_PROGRAMS) $(COMPONENTS),$(p)=$(OUT)/$(p))
	$(TARGET_DIR)/$(PROFILE)/mksystem $(BUILD)/kernel.elf $(BUILD)/boot.img -o $(BUILD)/system.elf
	$(TARGET_DIR)/$(PROFILE)/mkbootimg -o $(BUILD)/$(SYSTEM).img manifest=userland/manifest.txt \
	    system=$(BUILD)/$(SYSTEM).sys $(foreach p,$(USER_PROGRAMS) $(HOST_TESTED_PROGRAMS) $(COMPONENTS),$(p)=$(OUT)/$(p))
	$(TARGET_DIR)/$(PROFILE)/mksystem $(BUILD)/kernel.elf $(BUILD)/$(SYSTEM).img -o $(BUILD)/$(SYSTEM).elf

# The authority graph of systems/$(SYSTEM).toml as build/graph.svg (Graphviz): the
# description's edges plus, in red, the `graph: ` lines the running system printed
# (it boots it first; LIVE=<serial log> uses that log instead, NOLIVE=1 the
# description only; docs/system.md).
graph: graph-deps
	cargo build --profile $(PROFILE) -p scenarios --bin mksys
	@mkdir -p $(BUILD)
	@if [ -z "$(LIVE)" ] && [ -z "$(NOLIVE)" ]; then $(MAKE) --no-print-directory graph-log; fi
	$(TARGET_DIR)/$(PROFILE)/mksys systems/$(SYSTEM).toml --dot $(BUILD)/$(SYSTEM).dot \
	    $(if $(NOLIVE),,--live $(or $(LIVE),$(BUILD)/$(SYSTEM).log))
	dot -Tsvg $(BUILD)/$(SYSTEM).dot -o $(BUILD)/$(SYSTEM).svg
	cp $(BUILD)/$(SYSTEM).svg $(BUILD)/graph.svg
	@echo "make: wrote $(BUILD)/graph.svg (and $(BUILD)/$(SYSTEM).svg)"

# Boots systems/$(SYSTEM).toml as `make run` does and keeps its serial log in
# build/$(SYSTEM).log: the `graph:` lines init printed become the red (live) edges.
graph-log: image qemu-deps
	@echo "make: booting systems/$(SYSTEM).toml for its live authority graph"
	-@timeout $(GRAPH_TIMEOUT) $(QEMU) $(subst -serial stdio,-serial file:$(BUILD)/$(SYSTEM).log,$(QEMU_ARGS)) $(RUN_DEVICES) \
	    -kernel $(BUILD)/$(SYSTEM).elf -append "$(strip $(RUN_APPEND) $(APPEND))" >/dev/null 2>&1
	@grep -q '^graph: ' $(BUILD)/$(SYSTEM).log || { echo "make: no graph: lines in $(BUILD)/$(SYSTEM).log"; exit 1; }

# A GRUB (multiboot2) bootable ISO for real hardware, hybrid BIOS + UEFI; `make test`
# boots it once each way (SeaBIOS, and OVMF).
iso: image iso-deps
	@mkdir -p $(BUILD)/iso/boot/grub
	rm -f $(BUILD)/iso/boot/kernel.elf $(BUILD)/iso/boot/boot.img
	cp $(BUILD)/system.elf $(BUILD)/iso/boot/
	printf 'set timeout=0\nset default=0\nmenuentry "capability microkernel" {\n  multiboot2 /boot/system.elf $(APPEND)\n  boot\n}\n' > $(BUILD)/iso/boot/grub/grub.cfg
	grub-mkrescue -o $(BUILD)/kernel.iso $(BUILD)/iso 2>$(BUILD)/grub-mkrescue.log || { cat $(BUILD)/grub-mkrescue.log; exit 1; }
	@echo "make: wrote $(BUILD)/kernel.iso"

# Boots the default system; QEMU's status (2*code+1) is turned back into the guest's code.
# The default system drives QEMU's edu device with its default 28-bit DMA mask; QEMU
# 7.2 records no interrupt-remapping faults, so bus mastering needs the logged opt-out.
# The appliance (systems/appliance.toml): its NIC on QEMU's user network with the
# partitions' ports forwarded on 127.0.0.1 only, and the rogue edu device.
APPLIANCE_NET := -netdev user,id=n0,hostfwd=tcp:127.0.0.1:8080-10.0.2.15:80,hostfwd=udp:127.0.0.1:7777-10.0.2.16:7 \
                 -device e1000e,netdev=n0
ifeq ($(SYSTEM),appliance)
RUN_DEVICES ?= -device edu $(APPLIANCE_NET)
# It serves until stopped: its `graph:` lines are all out well within a minute.
GRAPH_TIMEOUT ?= 60
endif
GRAPH_TIMEOUT ?= 300
RUN_DEVICES ?= -device edu
RUN_APPEND  ?= iommu=allow-unremapped-dma
# NVME=disk.img: the image as QEMU's NVMe controller (commas spelled out: inside
# $(if ...) a literal comma would end the argument).
NVME_ARGS = $(if $(NVME),-drive file=$(NVME)$(comma)if=none$(comma)id=nvme0$(comma)format=raw \
            -device nvme$(comma)serial=nvme0$(comma)drive=nvme0)
# A system with management's console on COM2 (`[isa.com2]`, docs/appliance.md): QEMU's
# second serial port listens on 127.0.0.1:$(CONSOLE_PORT) (COM1 stays on stdio).
CONSOLE_PORT ?= 4444
CONSOLE_ARGS := $(if $(shell grep -s '^\[isa\.com2\]' systems/$(SYSTEM).toml),\
                -serial tcp:127.0.0.1:$(CONSOLE_PORT)$(comma)server=on$(comma)wait=off)
run: image qemu-deps
	@echo "make: booting systems/$(SYSTEM).toml (QEMU q35, TCG, $(MEM), $(IOMMU), $(RUN_DEVICES))"
	@if [ -n "$(CONSOLE_ARGS)" ]; then echo "make: management console on COM2: nc 127.0.0.1 $(CONSOLE_PORT) (then: help, status, graph, restart <component>, cutoff <device>)"; fi
	@if [ "$(SYSTEM)" = appliance ]; then echo "make: the appliance serves until you stop QEMU (Ctrl-A X): curl http://127.0.0.1:8080/ ; UDP echo on 127.0.0.1:7777"; \
	    else echo "make: the system stops itself"; fi
	@$(QEMU) $(QEMU_ARGS) $(CONSOLE_ARGS) $(RUN_DEVICES) -kernel $(BUILD)/$(SYSTEM).elf -append "$(strip $(RUN_APPEND) $(APPEND))" \
	    $(NVME_ARGS); \
	    status=$$?; code=$$((status >> 1)); \
	    if [ $$status -eq 0 ] && [ "$(SYSTEM)" = appliance ]; then echo "make: QEMU stopped (the appliance serves until stopped)"; \
	    elif [ $$status -eq 1 ]; then echo "make: system exited with code 0 (success)"; \
	    else echo "make: system exited with code $$(printf '%#x' $$code) (QEMU status $$status)"; exit 1; fi

# `make appliance`: `make run SYSTEM=appliance`.
.PHONY: appliance
appliance:
	$(MAKE) run SYSTEM=appliance

run-iso: iso qemu-deps
	@$(QEMU) $(QEMU_ARGS) -cdrom $(BUILD)/kernel.iso; status=$$?; [ $$status -eq 1 ] || { echo "make: QEMU status $$status"; exit 1; }

# The same ISO under UEFI firmware (OVMF); intel-iommu needs the split irqchip there.
run-uefi: iso qemu-deps
	@$(QEMU) $(subst q35,q35$(comma)kernel-irqchip=split,$(QEMU_ARGS)) -bios $(OVMF) -cdrom $(BUILD)/kernel.iso; \
	    status=$$?; [ $$status -eq 1 ] || { echo "make: QEMU status $$status"; exit 1; }

# The proofs (make proofs), host unit tests (ABI, kernel logic), the parser fuzzer's
# corpus replay plus a short campaign per target, and the QEMU boot scenarios (the syscall fuzzer with two fixed
# seeds and a fresh one). The fresh seed is printed first: `make fuzz SEED=` and
# `make fuzz-qemu SEED=` replay it.
test: image iso qemu-deps chromium-deps proofs
	@seed=$$(date +%s%N); \
	    echo "make: fuzz seeds: parser $$seed; in QEMU 0x9e3779b97f4a7c15 0x0123456789abcdef $$seed"; \
	    echo "make: replay with make fuzz SEED=$$seed TARGET=<name> / make fuzz-qemu SEED=<seed>"; \
	    PARSER_FUZZ_SEED=$$seed FUZZ_FRESH_SEED=$$seed cargo test --no-fail-fast $(HOST_ONLY)

# Long parser-fuzz campaigns: TARGET= one target (default all), SECONDS= per target
# (default 600), SEED= to replay a seed. Crashing inputs land in $(TARGET_DIR)/fuzz-crashes/.
# (TARGET= on the command line replaces the Rust target name above: fuzz only needs the
# host toolchain, so it takes TARGET as the fuzz target and depends on nothing else.)
FUZZ_TARGET = $(if $(filter x86_64-unknown-none,$(TARGET)),,$(TARGET))
fuzz:
	cargo run --release -q -p parser-fuzz -- --target "$(FUZZ_TARGET)" --seconds $(or $(SECONDS),600) $(if $(SEED),--seed $(SEED))

# One in-QEMU syscall-fuzzer seed (as printed by make test); CALLS= calls (default 20000).
fuzz-qemu: image qemu-deps
	@[ -n "$(SEED)" ] || { echo "make: fuzz-qemu needs SEED=<n> (make test prints the seeds)"; exit 2; }
	FUZZ_SEED=$(SEED) $(if $(CALLS),FUZZ_CALLS=$(CALLS)) cargo test -p scenarios --test fuzz -- --nocapture

# Millions of random system calls from one seed (SEED= or the clock; CALLS= default
# 2000000; about 10 minutes per million under TCG). Not part of make test.
soak: image qemu-deps
	FUZZ_SEED=$(or $(SEED),$(shell date +%s)) FUZZ_CALLS=$(or $(CALLS),2000000) \
	    cargo test -p scenarios --test fuzz random_system_calls_never_hurt_the_kernel -- --nocapture

# Benchmarks in guest instructions (QEMU -icount shift=0,sleep=off); writes bench/results.json.
bench: image qemu-deps
	cargo run --release -q -p scenarios --bin bench

check: toolchain
	cargo fmt --all --check
	@long=$$(git ls-files --cached --others --exclude-standard -- '*.rs' '*.v' | xargs -r wc -l | awk '$$2 != "total" && $$1 > $(MAX_LINES)'); \
	    if [ -n "$$long" ]; then echo "make: files over $(MAX_LINES) lines (split them):"; echo "$$long"; exit 1; fi
	tools/check-layers.sh
	tools/check-docs.sh
	cargo clippy $(HOST_ONLY) --all-targets -- -D warnings
	cargo clippy --target $(TARGET) -p kernel -p libcap $(addprefix -p ,$(USER_PROGRAMS) $(HOST_TESTED_PROGRAMS) $(COMPONENT_PACKAGES)) -- -D warnings

gdb: image qemu-deps
	@echo "make: QEMU waits for gdb on :1234 (gdb $(BUILD)/system.elf -ex 'target remote :1234')"
	$(QEMU) $(QEMU_ARGS) -kernel $(BUILD)/system.elf -s -S

clean:
	cargo clean
	rm -rf $(BUILD)
