source /work/s16/set-1.sh
source /work/s16/set-2.sh
