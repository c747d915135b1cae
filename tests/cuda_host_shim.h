// Host stand-ins for the CUDA names generated/cupy/_kernels.cu uses, so that the same kernel
// source compiles as host C++ (g++ -DFACTORULES_HOST -I tests).
//
// A "launch" runs every (block, thread) pair of the grid in turn, setting the globals below
// before each call.  Include this header in exactly one translation unit: it defines them.
#ifndef FACTORULES_CUDA_HOST_SHIM_H
#define FACTORULES_CUDA_HOST_SHIM_H

#include <complex>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline

struct fr_dim3 {
    unsigned int x, y, z;
};
typedef fr_dim3 dim3;

// The built-in index variables, exported with C linkage so a test can also set them itself.
extern "C" {
fr_dim3 threadIdx = {0, 0, 0};
fr_dim3 blockIdx = {0, 0, 0};
fr_dim3 blockDim = {1, 1, 1};
fr_dim3 gridDim = {1, 1, 1};
}

// CuPy's complex<T> (thrust::complex) behaves as std::complex<T> for what the kernels use:
// construction from one or two reals, real(), imag(), +, -, * and conj.
template <typename T>
using complex = std::complex<T>;
using std::conj;

// Every kernel parameter is a pointer or a 64-bit index; a pointer to T and a void pointer
// are passed alike by the host ABIs this runs on, so one prototype per arity serves them all.
typedef void (*fr_host_kernel_3)(const void*, void*, long long, long long, long long);
typedef void (*fr_host_kernel_4)(const void*, void*, long long, long long, long long,
                                 long long);

// Run `kernel` over grid x block: one call per thread, blockIdx/threadIdx set for each.
// Returns 0, or -1 when the number of index arguments is not one of the supported arities.
extern "C" int fr_host_launch(void* kernel, fr_dim3 grid, fr_dim3 block, const void* input,
                              void* output, int n_indices, const long long* indices) {
    if (n_indices != 3 && n_indices != 4) return -1;
    gridDim = grid;
    blockDim = block;
    for (unsigned int bz = 0; bz < grid.z; ++bz)
    for (unsigned int by = 0; by < grid.y; ++by)
    for (unsigned int bx = 0; bx < grid.x; ++bx)
    for (unsigned int tz = 0; tz < block.z; ++tz)
    for (unsigned int ty = 0; ty < block.y; ++ty)
    for (unsigned int tx = 0; tx < block.x; ++tx) {
        blockIdx = fr_dim3{bx, by, bz};
        threadIdx = fr_dim3{tx, ty, tz};
        if (n_indices == 3) {
            reinterpret_cast<fr_host_kernel_3>(kernel)(input, output, indices[0], indices[1],
                                                       indices[2]);
        } else {
            reinterpret_cast<fr_host_kernel_4>(kernel)(input, output, indices[0], indices[1],
                                                       indices[2], indices[3]);
        }
    }
    return 0;
}

#endif  // FACTORULES_CUDA_HOST_SHIM_H
