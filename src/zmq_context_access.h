#pragma once

#include <zmq.hpp>

#include <kvevents/zmq_context.h>

namespace kvevents::detail {

// The cppzmq context inside a ZmqContext, for the library's own sockets.
struct ZmqContextAccess {
    static zmq::context_t& context(ZmqContext& shared);
};

}  // namespace kvevents::detail
