/* A 2-rank OpenMPI program: every rank contributes rank+1 to an allreduce
 * and checks the sum. Built and started by the launcher (see job.yaml). */
#include <mpi.h>
#include <stdio.h>

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, size = 0, len = 0;
  char host[MPI_MAX_PROCESSOR_NAME];
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  MPI_Get_processor_name(host, &len);
  int mine = rank + 1, sum = 0;
  MPI_Allreduce(&mine, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  int want = size * (size + 1) / 2;
  printf("rank %d of %d on %s: allreduce sum %d (%s)\n", rank, size, host, sum,
         sum == want ? "ok" : "WRONG");
  fflush(stdout);
  MPI_Finalize();
  return sum == want ? 0 : 1;
}
