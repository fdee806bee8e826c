#pragma once

#include <memory>

namespace kvevents {

namespace detail {
struct ZmqContextAccess;
}

struct ZmqContextOptions {
    /// libzmq's I/O threads (ZMQ_IO_THREADS). One moves several hundred MB/s; raise it only when
    /// the I/O thread is the busy one.
    int io_threads = 1;
    /// Sockets the context may hold (ZMQ_MAX_SOCKETS; libzmq's default is 1023). A client holds
    /// four, and one more while a replay runs. libzmq sizes tables by it (about 12 bytes each).
    int max_sockets = 65536;
};

/// A ZeroMQ context that several clients can share (ClientOptions::context), so that a process
/// following many publishers runs one set of libzmq threads instead of one per client.
/// Destroy it after the clients that use it (they hold it by shared_ptr, so that is automatic).
class ZmqContext {
public:
    /// Throws std::invalid_argument naming a bad option.
    explicit ZmqContext(const ZmqContextOptions& options = {});
    ~ZmqContext();
    ZmqContext(const ZmqContext&) = delete;
    ZmqContext& operator=(const ZmqContext&) = delete;

    /// The libzmq context (a `void*` as zmq_ctx_new returns it), for sockets of the caller's own.
    /// Never shut it down or terminate it: a client using it would stop (state `failed`), and the
    /// destructor terminates it.
    void* handle() const;

private:
    friend struct detail::ZmqContextAccess;
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace kvevents
