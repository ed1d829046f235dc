// The parts of Apache ECharts that `avloc view` uses (tree-shaken by esbuild, build.sh).
import * as echarts from 'echarts/core';
import { LineChart, CustomChart } from 'echarts/charts';
import {
  GridComponent, TooltipComponent, DataZoomComponent, AxisPointerComponent, GraphicComponent,
} from 'echarts/components';
import { CanvasRenderer } from 'echarts/renderers';

echarts.use([LineChart, CustomChart, GridComponent, TooltipComponent, DataZoomComponent,
             AxisPointerComponent, GraphicComponent, CanvasRenderer]);
window.echarts = echarts;
