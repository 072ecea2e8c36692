#ifndef STRATA_CDNNLLOADER_H
#define STRATA_CDNNLLOADER_H

// Strata does not link libdnnl: dnnl_loader.c opens it with dlopen on first use, for two reasons.
// - libgomp (libdnnl's OpenMP runtime) reads OMP_WAIT_POLICY only when it is loaded; loading it
//   ourselves lets us set "passive" first (see dnnl_loader.c), which no code in the process can
//   do once libgomp has started with the process.
// - A binary copied to a machine without libdnnl still starts (the CUDA backend, `info`, ...).

/// Opens libdnnl.so.2 (and with it libgomp, globally, for OpenMPTeam). Returns 0 when it is open;
/// otherwise -1 with `message` saying which library is missing and how to install it.
/// Safe to call again and from several threads.
int strata_dnnl_load(char *message, int capacity);

#endif
