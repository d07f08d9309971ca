/// PacketIO: batched packet devices behind one protocol (`PacketDevice`), and the one syscall
/// funnel (`Syscall`) through which every libc call of the project passes.
///
/// Devices: `TunDevice` (into and out of user space), `RawSocketDevice` (out, IP_HDRINCL),
/// `PcapFileReader` / `PcapFileWriter` (replay and capture; the proxy's capture records
/// through the data plane's `CaptureRecorder`), and `MemoryDevice` (tests). Batches
/// (`PacketBatch`) and their per-packet metadata are Wire's: the engine uses them without I/O.
/// Offload work is the TUN device's own: it reads the virtio-net header and merges a flow's
/// segments before writing them (GRO, `SegmentCoalescer`); callers never downcast it.
///
/// Invariants of the module:
/// - Many packets per call; a device reads until the batch is full or it would block, and
///   writes a range of a batch, skipping packets marked dropped.
/// - No allocation per packet on the TUN, raw socket and pcap paths: buffers, iovecs and
///   mmsghdrs are allocated once per device.
/// - A packet the kernel refuses is counted by errno (`ErrnoCounts`, `WriteErrorCounting`) and
///   skipped; only a broken descriptor throws `SystemError`.
/// - Live devices never block: descriptors are non-blocking and EAGAIN is "would block".
public enum PacketIOModule {}
