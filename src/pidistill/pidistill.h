// pidistill's C++ API for programs built against the installed library (find_package(pidistill), target
// pidistill::pidistill; README.md "Use it from C++", examples/generate_one_call.cpp).
// Stable: what the headers included below mark "Stable API" on their first lines: names, arguments and meaning
// change only with the package's minor version (find_package(pidistill 0.1) refuses another 0.x). Every other
// installed header is internal: installed because these include it, and free to change.
#pragma once
#include "pidistill/edm/sampler.h"           // SamplerConfig: the teacher's steps, schedule and solver
#include "pidistill/io/safetensors.h"        // read_safetensors, write_safetensors
#include "pidistill/nets/net_config.h"       // NetConfig: EDM's network keywords and presets
#include "pidistill/nets/net_file.h"         // load_net: any network file; save_net
#include "pidistill/pid/image_generator.h"   // generate_images: one image per seed (teacher or PID student)
#include "pidistill/util/error.h"            // Error: what the library throws
#include "pidistill/util/image_io.h"         // write_png_grid, to_uint8, read_image
#include "pidistill/util/seeds.h"            // parse_seeds, latents_for_seeds
