// The one oneDNN CPU engine of the process and a stream per thread, shared by the kernels that
// call oneDNN's primitives (matmul_bf16.cpp, int8_matmul.cpp). Only where the build has oneDNN.
#pragma once
#ifdef LORAHUB_HAVE_DNNL
#include <oneapi/dnnl/dnnl.hpp>

namespace lorahub {

dnnl::engine& cpu_engine();
dnnl::stream& thread_stream();  // of cpu_engine(), one per calling thread

}  // namespace lorahub
#endif
