#include "dataplane/exchange/exchange_io.h"

namespace apim::dataplane {

namespace beast = boost::beast;

std::string SerializedHead(http::response<http::empty_body>& head) {
  http::response_serializer<http::empty_body> serializer(head);
  serializer.split(true);
  std::string bytes;
  beast::error_code error;
  while (!error && !serializer.is_header_done()) {
    size_t size = 0;
    serializer.next(error, [&](beast::error_code&, const auto& buffers) {
      for (const auto buffer : beast::buffers_range_ref(buffers)) {
        bytes.append(static_cast<const char*>(buffer.data()), buffer.size());
      }
      size = beast::buffer_bytes(buffers);
    });
    serializer.consume(size);
  }
  return bytes;
}

}  // namespace apim::dataplane
