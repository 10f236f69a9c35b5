#include "kernels/dnnl_engine.h"

#ifdef LORAHUB_HAVE_DNNL
namespace lorahub {

dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

dnnl::stream& thread_stream() {
  thread_local dnnl::stream stream(cpu_engine());
  return stream;
}

}  // namespace lorahub
#endif
