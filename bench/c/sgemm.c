// OpenBLAS cblas_sgemm against oneDNN dnnl_sgemm, one thread, thread-CPU time, on 1024^3 and the
// dense layers' shapes of the cnn and VGG heads (bench/NOTES.md section 7).
//   cc -O2 sgemm.c -o /tmp/sgemm -lopenblas -ldnnl && OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 /tmp/sgemm
// (libopenblas-dev is no longer a Strata dependency: install it to run this.)
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <cblas.h>
#include <oneapi/dnnl/dnnl.h>
static double cpu(void){struct timespec t;clock_gettime(CLOCK_THREAD_CPUTIME_ID,&t);return t.tv_sec+t.tv_nsec*1e-9;}
int main(){
  int shapes[][3]={{1024,1024,1024},{128,500,768},{128,250,500},{128,10,250},{500,768,128},{64,10,512},{768,500,128}};
  for(int s=0;s<7;s++){int M=shapes[s][0],N=shapes[s][1],K=shapes[s][2];
    float*A=malloc(4L*M*K),*B=malloc(4L*K*N),*C=malloc(4L*M*N);
    for(long i=0;i<(long)M*K;i++)A[i]=rand()/(float)RAND_MAX; for(long i=0;i<(long)K*N;i++)B[i]=rand()/(float)RAND_MAX;
    double bo=1e9,bd=1e9; int reps= M*N*K>1e8?5:200;
    for(int r=0;r<3;r++){
      double t=cpu(); for(int i=0;i<reps;i++) cblas_sgemm(CblasRowMajor,CblasNoTrans,CblasNoTrans,M,N,K,1,A,K,B,N,0,C,N); t=(cpu()-t)/reps; if(t<bo)bo=t;
      t=cpu(); for(int i=0;i<reps;i++) dnnl_sgemm('N','N',M,N,K,1,A,K,B,N,0,C,N); t=(cpu()-t)/reps; if(t<bd)bd=t;}
    printf("%4dx%4dx%4d openblas %7.1f GF/s  dnnl %7.1f GF/s\n",M,N,K,2.0*M*N*K/bo/1e9,2.0*M*N*K/bd/1e9);
    free(A);free(B);free(C);}
}
