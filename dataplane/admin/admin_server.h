#pragma once
// The admin listener (loopback by default): /healthz (the process serves), /readyz (a snapshot
// is loaded), /metrics (Prometheus text format).

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "dataplane/admin/metrics.h"
#include "dataplane/config/snapshot_store.h"

namespace apim::dataplane {

boost::asio::awaitable<void> ServeAdmin(boost::asio::ip::tcp::acceptor& acceptor,
                                        const SnapshotStore& snapshots, Metrics& metrics);

}  // namespace apim::dataplane
