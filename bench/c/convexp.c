// Component timings for the per-image im2col + sgemm scheme, single thread.
// cc -O2 convexp.c -o convexp -lopenblas   (no -march: mimics Swift's baseline codegen for glue)
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
void openblas_set_num_threads(int);
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static float* buf(size_t n){float*p=aligned_alloc(64,n*4+64);for(size_t i=0;i<n;i++)p[i]=(float)rand()/RAND_MAX-0.5f;return p;}

// flat im2col for 3x3 stride 1 pad 1 (same as the Swift product path)
static void im2col(const float*x,float*col,int C,int H,int W){
  int pq=H*W;
  for(int c=0;c<C;c++){const float*xc=x+c*pq;
    for(int i=0;i<3;i++){int pLo=i==0?1:0,pHi=i==2?H-1:H;
      for(int j=0;j<3;j++){float*row=col+((c*3+i)*3+j)*pq;int qLo=j==0?1:0,qHi=j==2?W-1:W;
        int first=pLo*W+qLo,end=(pHi-1)*W+qHi,shift=(i-1)*W+(j-1);
        memset(row,0,first*4);memcpy(row+first,xc+first+shift,(end-first)*4);memset(row+end,0,(pq-end)*4);
        if(qLo>0||qHi<W)for(int p=pLo;p<pHi;p++){float*r=row+p*W;for(int q=0;q<qLo;q++)r[q]=0;for(int q=qHi;q<W;q++)r[q]=0;}
      }}}
}
#define T(label, reps, body) do{ body; double t0=now(); for(int _r=0;_r<reps;_r++){body;} double dt=(now()-t0)/reps; \
  printf("  %-44s %8.2f us %7.1f GFLOP/s\n", label, dt*1e6, flops/dt/1e9);}while(0)
int main(int argc,char**argv){
  openblas_set_num_threads(1);
  int shapes[][3]={{16,16,32},{32,32,16},{64,64,8}};
  {int n=1024;float*a=buf(n*n),*b=buf(n*n),*c=buf(n*n);double flops=2.0*n*n*n;
   T("sgemm 1024^3 1 thread",5,cblas_sgemm(CblasRowMajor,CblasNoTrans,CblasNoTrans,n,n,n,1,a,n,b,n,0,c,n));}
  for(int s=0;s<3;s++){int C=shapes[s][0],F=shapes[s][1],H=shapes[s][2],W=H,K=C*9,PQ=H*W;
    printf("conv %d->%d %dx%d per image (1 thread)\n",C,F,H,W);
    float*x=buf(C*PQ*8),*w=buf(F*K),*y=buf(F*PQ*8),*col=buf(K*PQ*8),*colT=buf(K*PQ*8),*dw=buf(F*K);
    double flops=2.0*F*K*PQ;
    T("im2col (flat)",200,im2col(x,col,C,H,W));
    T("sgemm NN y=W.col",200,cblas_sgemm(CblasRowMajor,CblasNoTrans,CblasNoTrans,F,PQ,K,1,w,K,col,PQ,0,y,PQ));
    T("sgemm NN y=W.col beta1",200,cblas_sgemm(CblasRowMajor,CblasNoTrans,CblasNoTrans,F,PQ,K,1,w,K,col,PQ,1,y,PQ));
    T("im2col+sgemm NN",200,{im2col(x,col,C,H,W);cblas_sgemm(CblasRowMajor,CblasNoTrans,CblasNoTrans,F,PQ,K,1,w,K,col,PQ,0,y,PQ);});
    T("sgemm NT y=W.colT^T (colT PQxK)",200,cblas_sgemm(CblasRowMajor,CblasNoTrans,CblasTrans,F,PQ,K,1,w,K,colT,K,0,y,PQ));
    T("sgemm yT=colT.W^T (PQxF)",200,cblas_sgemm(CblasRowMajor,CblasNoTrans,CblasTrans,PQ,F,K,1,colT,K,w,K,0,y,F));
    T("sgemm yT=col^T.W^T (PQxF)",200,cblas_sgemm(CblasRowMajor,CblasTrans,CblasTrans,PQ,F,K,1,col,PQ,w,K,0,y,F));
    T("sgemm NT dw+=dy.col^T",200,cblas_sgemm(CblasRowMajor,CblasNoTrans,CblasTrans,F,K,PQ,1,y,PQ,col,PQ,1,dw,K));
    T("sgemm dw^T+=col.dy^T (KxF)",200,cblas_sgemm(CblasRowMajor,CblasNoTrans,CblasTrans,K,F,PQ,1,col,PQ,y,PQ,1,dw,F));
    T("sgemm NN 4 images folded (N=4PQ)",50,cblas_sgemm(CblasRowMajor,CblasNoTrans,CblasNoTrans,F,4*PQ,K,1,w,K,col,4*PQ,0,y,4*PQ));
    T("sgemm NT dw 4 images folded (K=4PQ)",50,cblas_sgemm(CblasRowMajor,CblasNoTrans,CblasTrans,F,K,4*PQ,1,y,4*PQ,col,4*PQ,1,dw,K));
  }
}
