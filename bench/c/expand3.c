// 3x3/1 pad-1 forward without full im2col: copy the zero-padded image three times, shifted by
// 0, 1, 2 columns (X3: (3C, Hp*Wp)), then 3 GEMMs with K = 3C (one per kernel row, beta = 1)
// into a wide output (F, H*Wp), and drop the 2 pad columns per row. One thread, one image, min
// thread-CPU time; compared with im2col + one GEMM.   cc -O2 expand3.c -lopenblas
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
void openblas_set_num_threads(int);
static double cpu(void){struct timespec t;clock_gettime(CLOCK_THREAD_CPUTIME_ID,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static float* buf(size_t n){float*p=aligned_alloc(64,(n*4+63)/64*64);for(size_t i=0;i<n;i++)p[i]=(rand()%1000)/1000.0f-0.5f;return p;}
static int C,F,H,W,K,PQ;
static void im2col(const float*x,float*col){
  for(int c=0;c<C;c++){const float*xc=x+c*H*W;
    for(int i=0;i<3;i++)for(int j=0;j<3;j++){float*row=col+((c*3+i)*3+j)*PQ;
      for(int p=0;p<H;p++){float*r=row+p*W;int ih=p-1+i;
        if(ih<0||ih>=H){memset(r,0,W*4);continue;}
        const float*s=xc+ih*W+j-1;
        if(j==0){r[0]=0;memcpy(r+1,s+1,(W-1)*4);}else if(j==2){memcpy(r,s,(W-1)*4);r[W-1]=0;}else memcpy(r,s,W*4);}}}
}
int main(){
  openblas_set_num_threads(1);
  int shapes[][3]={{16,16,32},{32,32,16},{64,64,8},{64,64,16},{32,32,32}};
  int n=1024;float*a=buf(n*n),*b=buf(n*n),*c=buf(n*n);double best=1e9;
  for(int r=0;r<6;r++){double t=cpu();cblas_sgemm(CblasRowMajor,CblasNoTrans,CblasNoTrans,n,n,n,1,a,n,b,n,0,c,n);t=cpu()-t;if(t<best)best=t;}
  double sg=2.0*n*n*n/best/1e9;printf("sgemm 1024^3 one thread %.1f GFLOP/s\n",sg);
  for(int s=0;s<5;s++){C=shapes[s][0];F=shapes[s][1];H=W=shapes[s][2];K=C*9;PQ=H*W;
    int Wp=W+2,Hp=H+2,P3=Hp*Wp;
    float*x=buf(C*PQ),*w=buf(F*K),*y=buf(F*PQ),*col=buf(K*PQ),*x3=buf(3*C*P3+8),*wi=buf(3*F*3*C),*yw=buf(F*H*Wp);
    for(int i=0;i<3;i++)for(int f=0;f<F;f++)for(int cc=0;cc<C;cc++)for(int j=0;j<3;j++)wi[(i*F+f)*3*C+cc*3+j]=w[((f*C+cc)*3+i)*3+j];
    memset(x3,0,(3*C*P3+8)*4);
    double flops=2.0*F*K*PQ,t1=1e9,t2=1e9;
    for(int r=0;r<300;r++){double t=cpu();im2col(x,col);cblas_sgemm(CblasRowMajor,CblasNoTrans,CblasNoTrans,F,PQ,K,1,w,K,col,PQ,0,y,PQ);t=cpu()-t;if(t<t1)t1=t;}
    for(int r=0;r<300;r++){double t=cpu();
      for(int cc=0;cc<C;cc++)for(int j=0;j<3;j++){float*d=x3+(cc*3+j)*P3;   // d[r*Wp+q] = xpad[r][q+j]
        for(int rr=1;rr<=H;rr++){float*dr=d+rr*Wp;const float*sr=x+cc*PQ+(rr-1)*W; // xpad[rr][s]=x[rr-1][s-1]
          // q+j-1 in [0,W): q from max(0,1-j) to W-j
          int q0=1-j<0?0:1-j,q1=W+1-j; if(q1>Wp)q1=Wp; for(int q=0;q<q0;q++)dr[q]=0; memcpy(dr+q0,sr+q0+j-1,(q1-q0)*4); for(int q=q1;q<Wp;q++)dr[q]=0;}}
      for(int i=0;i<3;i++)cblas_sgemm(CblasRowMajor,CblasNoTrans,CblasNoTrans,F,H*Wp,3*C,1,wi+i*F*3*C,3*C,x3+i*Wp,P3,i?1:0,yw,H*Wp);
      for(int f=0;f<F;f++)for(int p=0;p<H;p++)memcpy(y+f*PQ+p*W,yw+f*H*Wp+p*Wp,W*4);
      t=cpu()-t;if(t<t2)t2=t;}
    // correctness: compare the two outputs
    float*y2=buf(F*PQ);im2col(x,col);cblas_sgemm(CblasRowMajor,CblasNoTrans,CblasNoTrans,F,PQ,K,1,w,K,col,PQ,0,y2,PQ);
    double e=0;for(int i=0;i<F*PQ;i++){double d=y[i]-y2[i];if(d<0)d=-d;if(d>e)e=d;}
    printf("conv %d->%d %dx%d: im2col+gemm %.1f us (%.0f%%), 3x-expanded 3 gemms %.1f us (%.0f%%), max diff %.2g\n",C,F,H,W,
      t1*1e6,100*flops/t1/1e9/sg,t2*1e6,100*flops/t2/1e9/sg,e);
  }}
