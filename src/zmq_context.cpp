#include <stdexcept>
#include <string>

#include <zmq.hpp>

#include <kvevents/zmq_context.h>

#include "zmq_context_access.h"

namespace kvevents {

struct ZmqContext::Impl {
    zmq::context_t context;
};

ZmqContext::ZmqContext(const ZmqContextOptions& options) : impl_(std::make_unique<Impl>()) {
    if (options.io_threads < 1) {
        throw std::invalid_argument("ZmqContextOptions.io_threads must be at least 1, got " +
                                    std::to_string(options.io_threads));
    }
    if (options.max_sockets < 1) {
        throw std::invalid_argument("ZmqContextOptions.max_sockets must be at least 1, got " +
                                    std::to_string(options.max_sockets));
    }
    impl_->context.set(zmq::ctxopt::io_threads, options.io_threads);
    impl_->context.set(zmq::ctxopt::max_sockets, options.max_sockets);
}

ZmqContext::~ZmqContext() = default;

void* ZmqContext::handle() const {
    return impl_->context.handle();
}

namespace detail {

zmq::context_t& ZmqContextAccess::context(ZmqContext& shared) {
    return shared.impl_->context;
}

}  // namespace detail
}  // namespace kvevents
