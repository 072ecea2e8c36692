// Whole-batch (128 images) timings of alternative per-image schemes, 2 pthreads x 64 images,
// single-threaded OpenBLAS in each; rounds interleaved with sgemm 1024^3 (2 OpenBLAS threads)
// so that the ratios share the machine's noise.   cc -O2 schemes.c -lopenblas -lpthread
#include <cblas.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
void openblas_set_num_threads(int);
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static float* buf(size_t n){float*p=aligned_alloc(64,(n*4+63)/64*64);for(size_t i=0;i<n;i++)p[i]=(rand()%1000)/1000.0f-0.5f;return p;}
enum{NB=128};
static int C,F,H,W,K,PQ,variant,rowsPerChunk;
static float *X,*Wt,*Y,*DW[2],*COL[2],*YT[2];
// im2col of output rows [p0,p1) of a 3x3/1 pad-1 conv, into col (K, (p1-p0)*W)
static void im2col_rows(const float*x,float*col,int p0,int p1){
  int n=(p1-p0)*W;
  for(int c=0;c<C;c++){const float*xc=x+c*H*W;
    for(int i=0;i<3;i++)for(int j=0;j<3;j++){float*row=col+((c*3+i)*3+j)*n;
      for(int p=p0;p<p1;p++){float*r=row+(p-p0)*W;int ih=p-1+i;
        if(ih<0||ih>=H){memset(r,0,W*4);continue;}
        const float*s=xc+ih*W+j-1;
        if(j==0){r[0]=0;memcpy(r+1,s+1,(W-1)*4);}else if(j==2){memcpy(r,s,(W-1)*4);r[W-1]=0;}else memcpy(r,s,W*4);
      }}}
}
static void* work(void*arg){int t=(int)(long)arg;float*col=COL[t],*dw=DW[t],*yt=YT[t];
  for(int n=t*NB/2;n<(t+1)*NB/2;n++){const float*x=X+(size_t)n*C*PQ;float*y=Y+(size_t)n*F*PQ;
    switch(variant){
    case 0: im2col_rows(x,col,0,H);cblas_sgemm(CblasRowMajor,CblasNoTrans,CblasNoTrans,F,PQ,K,1,Wt,K,col,PQ,0,y,PQ);break;
    case 1: for(int p=0;p<H;p+=rowsPerChunk){int q=p+rowsPerChunk>H?H:p+rowsPerChunk;im2col_rows(x,col,p,q);
              cblas_sgemm(CblasRowMajor,CblasNoTrans,CblasNoTrans,F,(q-p)*W,K,1,Wt,K,col,(q-p)*W,0,y+p*W,PQ);}break;
    case 2: im2col_rows(x,col,0,H);cblas_sgemm(CblasRowMajor,CblasTrans,CblasTrans,PQ,F,K,1,col,PQ,Wt,K,0,yt,F);
            for(int f=0;f<F;f++)for(int s=0;s<PQ;s++)y[f*PQ+s]=yt[s*F+f];break;
    case 3: im2col_rows(x,col,0,H);cblas_sgemm(CblasRowMajor,CblasNoTrans,CblasTrans,F,K,PQ,1,y,PQ,col,PQ,1,dw,K);break;
    case 4: im2col_rows(x,col,0,H);cblas_sgemm(CblasRowMajor,CblasNoTrans,CblasTrans,K,F,PQ,1,col,PQ,y,PQ,1,dw,F);break;
    case 5: im2col_rows(x,col,0,H);break;
    case 6: cblas_sgemm(CblasRowMajor,CblasNoTrans,CblasNoTrans,F,PQ,K,1,Wt,K,col,PQ,0,y,PQ);break;
    case 7: cblas_sgemm(CblasRowMajor,CblasNoTrans,CblasTrans,K,F,PQ,1,col,PQ,y,PQ,1,dw,F);break;
    }}
  return 0;}
static void runAll(void){openblas_set_num_threads(1);pthread_t th[2];for(long t=0;t<2;t++)pthread_create(&th[t],0,work,(void*)t);
  for(int t=0;t<2;t++)pthread_join(th[t],0);openblas_set_num_threads(2);}
static int cmp(const void*a,const void*b){double x=*(double*)a,y=*(double*)b;return x<y?-1:x>y;}
static double cpu(void){struct timespec t;clock_gettime(CLOCK_THREAD_CPUTIME_ID,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static int mainSingle(int argc,char**argv);
static int mainPair(int argc,char**argv);
int main(int argc,char**argv){ if(getenv("SINGLE")) return mainSingle(argc,argv); return mainPair(argc,argv);}
static double minTime(int v,int reps){double best=1e9;for(int r=0;r<reps;r++){double t=cpu();variant=v;
  // one image on thread 0's buffers
  const float*x=X;float*y=Y;float*col=COL[0],*dw=DW[0],*yt=YT[0];
  switch(v){
    case 0: im2col_rows(x,col,0,H);cblas_sgemm(CblasRowMajor,CblasNoTrans,CblasNoTrans,F,PQ,K,1,Wt,K,col,PQ,0,y,PQ);break;
    case 1: for(int p=0;p<H;p+=rowsPerChunk){int q=p+rowsPerChunk>H?H:p+rowsPerChunk;im2col_rows(x,col,p,q);
              cblas_sgemm(CblasRowMajor,CblasNoTrans,CblasNoTrans,F,(q-p)*W,K,1,Wt,K,col,(q-p)*W,0,y+p*W,PQ);}break;
    case 2: im2col_rows(x,col,0,H);cblas_sgemm(CblasRowMajor,CblasTrans,CblasTrans,PQ,F,K,1,col,PQ,Wt,K,0,yt,F);
            for(int f=0;f<F;f++)for(int s=0;s<PQ;s++)y[f*PQ+s]=yt[s*F+f];break;
    case 3: im2col_rows(x,col,0,H);cblas_sgemm(CblasRowMajor,CblasNoTrans,CblasTrans,F,K,PQ,1,y,PQ,col,PQ,1,dw,K);break;
    case 4: im2col_rows(x,col,0,H);cblas_sgemm(CblasRowMajor,CblasNoTrans,CblasTrans,K,F,PQ,1,col,PQ,y,PQ,1,dw,F);break;
    case 5: im2col_rows(x,col,0,H);break;
    case 6: cblas_sgemm(CblasRowMajor,CblasNoTrans,CblasNoTrans,F,PQ,K,1,Wt,K,col,PQ,0,y,PQ);break;
    case 7: cblas_sgemm(CblasRowMajor,CblasNoTrans,CblasTrans,K,F,PQ,1,col,PQ,y,PQ,1,dw,F);break;
  }
  t=cpu()-t;if(t<best)best=t;}return best;}
static int mainSingle(int argc,char**argv){
  openblas_set_num_threads(1);
  int shapes[][3]={{16,16,32},{32,32,16},{64,64,8}};
  const char*names[]={"fwd im2col+NN","fwd chunked im2col+NN","fwd yT=col^T.W^T+transpose","bwdF dw+=dy.col^T","bwdF dwT+=col.dy^T","im2col only","fwd NN gemm only","bwdF dwT gemm only"};
  int n=1024;float*a=buf(n*n),*b=buf(n*n),*c=buf(n*n);double best=1e9;
  for(int r=0;r<6;r++){double t=cpu();cblas_sgemm(CblasRowMajor,CblasNoTrans,CblasNoTrans,n,n,n,1,a,n,b,n,0,c,n);t=cpu()-t;if(t<best)best=t;}
  double sg=2.0*n*n*n/best/1e9; printf("single thread, min thread-CPU time: sgemm 1024^3 %.1f GFLOP/s\n",sg);
  for(int s=0;s<3;s++){C=shapes[s][0];F=shapes[s][1];H=W=shapes[s][2];K=C*9;PQ=H*W;
    X=buf((size_t)C*PQ);Y=buf((size_t)F*PQ);Wt=buf(F*K);DW[0]=buf(F*K);COL[0]=buf(K*PQ);YT[0]=buf(F*PQ);
    double flops=2.0*F*K*PQ; printf("conv %d->%d %dx%d per image\n",C,F,H,W);
    for(int v=0;v<8;v++){int chunks[]={2,4,8,16};
      if(v==1){for(int k=0;k<4;k++){rowsPerChunk=chunks[k];if(rowsPerChunk>=H)continue;double t=minTime(v,300);
        printf("  %-26s %2d rows %7.2f us %6.1f GFLOP/s %5.1f%%\n",names[v],rowsPerChunk,t*1e6,flops/t/1e9,100*flops/t/1e9/sg);}continue;}
      double t=minTime(v,300);printf("  %-34s %7.2f us %6.1f GFLOP/s %5.1f%%\n",names[v],t*1e6,flops/t/1e9,100*flops/t/1e9/sg);}
  }return 0;}
static int mainPair(int argc,char**argv){
  int shapes[][3]={{16,16,32},{32,32,16},{64,64,8}};
  const char*names[]={"fwd im2col+NN","fwd chunked im2col+NN","fwd yT=col^T.W^T+transpose","bwdF dw+=dy.col^T","bwdF dwT+=col.dy^T","im2col only","fwd NN gemm only","bwdF dwT gemm only"};
  int nv=8,R=argc>1?atoi(argv[1]):7; rowsPerChunk=argc>2?atoi(argv[2]):8;
  int n=1024;float*a=buf(n*n),*b=buf(n*n),*c=buf(n*n);
  for(int s=0;s<3;s++){C=shapes[s][0];F=shapes[s][1];H=W=shapes[s][2];K=C*9;PQ=H*W;
    X=buf((size_t)NB*C*PQ);Y=buf((size_t)NB*F*PQ);Wt=buf(F*K);
    for(int t=0;t<2;t++){DW[t]=buf(F*K);COL[t]=buf(K*PQ);YT[t]=buf(F*PQ);}
    double T[9][64];double flops=2.0*NB*F*K*PQ;
    for(int r=0;r<=R;r++){ // round 0 = warm-up
      double t0=now();cblas_sgemm(CblasRowMajor,CblasNoTrans,CblasNoTrans,n,n,n,1,a,n,b,n,0,c,n);if(r)T[8][r-1]=now()-t0;
      for(variant=0;variant<nv;variant++){t0=now();runAll();if(r)T[variant][r-1]=now()-t0;}}
    for(int v=0;v<9;v++)qsort(T[v],R,sizeof(double),cmp);
    double sg=2.0*n*n*n/T[8][R/2]/1e9;
    printf("conv %d->%d %dx%d batch %d: sgemm %.1f GFLOP/s (chunk %d rows)\n",C,F,H,W,NB,sg,rowsPerChunk);
    for(int v=0;v<nv;v++)printf("  %-32s %7.2f ms %7.1f GFLOP/s %5.1f%%\n",names[v],T[v][R/2]*1e3,flops/T[v][R/2]/1e9,100*flops/T[v][R/2]/1e9/sg);
  }}
